using System.Text;
using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>A link of the namespace as last reported.</summary>
public sealed class LinkState
{
    public required int IfIndex;
    public string Name = "";
    public uint Flags;
    public uint Mtu;
    public ulong Mac;
    public bool HasMac;
    public int Master;
    public bool Vrf;
    public uint VrfTable;
    public int Carrier = -1;
    public byte Mark;

    public bool AdminUp => (Flags & Nl.IffUp) != 0;
}

/// <summary>Links (RTM_NEWLINK/DELLINK): a mirror's admin state, MTU and MAC go to its port and
/// the FIB; a mirror's deletion is reported; VRF devices (l3mdev, IFLA_LINKINFO kind "vrf" with
/// IFLA_VRF_TABLE) and their members (IFLA_MASTER) decide which table a port forwards in.</summary>
public sealed class LinkHandler : INetlinkHandler<LinkMsg>
{
    private readonly NamespaceSync _ns;
    private readonly Dictionary<int, LinkState> _links = [];

    internal LinkHandler(NamespaceSync ns) => _ns = ns;

    public int Count => _links.Count;

    public LinkState? Get(int ifindex) => _links.GetValueOrDefault(ifindex);

    public int IfIndexOf(string name)
    {
        foreach (LinkState l in _links.Values)
            if (l.Name == name)
                return l.IfIndex;
        return 0;
    }

    /// <summary>The routing table of the VRF device a link is enslaved to, if any.</summary>
    public uint? VrfTableOf(int ifindex)
    {
        if (!_links.TryGetValue(ifindex, out LinkState? l) || l.Master == 0)
            return null;
        return _links.TryGetValue(l.Master, out LinkState? m) && m.Vrf && m.VrfTable != 0 ? m.VrfTable : null;
    }

    public void Add(in LinkMsg m)
    {
        bool known = _links.TryGetValue(m.IfIndex, out LinkState? l);
        l ??= new LinkState { IfIndex = m.IfIndex };
        bool adminChanged = known && l.AdminUp != m.AdminUp;
        bool vrfChanged = l.Master != m.Master || l.Vrf != m.IsVrf || l.VrfTable != m.VrfTable;
        if (!m.Name.IsEmpty && !NameIs(l.Name, m.Name))
        {
            if (known)
                vrfChanged = true; // rules name interfaces: a rename can move a binding
            l.Name = Encoding.UTF8.GetString(m.Name);
        }
        l.Flags = m.Flags;
        if (m.Mtu != 0)
            l.Mtu = m.Mtu;
        if (m.HasMac)
        {
            l.Mac = m.Mac;
            l.HasMac = true;
        }
        l.Master = m.Master;
        l.Vrf = m.IsVrf;
        l.VrfTable = m.VrfTable;
        if (m.Carrier >= 0)
            l.Carrier = m.Carrier;
        l.Mark = _ns.Epoch;
        _links[m.IfIndex] = l;
        if (vrfChanged && (l.Vrf || l.Master != 0 || known))
            _ns.BindingsChanged();
        if (_ns.Mirror(m.IfIndex) is MirrorInfo mirror)
        {
            ApplyMirror(mirror, l);
            // Linux adds or flushes a link's routes without telling anyone when its admin
            // state changes: re-read them.
            if (adminChanged)
                _ns.ResyncWanted = true;
        }
    }

    private static bool NameIs(string name, ReadOnlySpan<byte> utf8)
    {
        if (name.Length != utf8.Length)
            return false;
        for (int i = 0; i < utf8.Length; i++)
            if (name[i] != utf8[i])
                return false;
        return true;
    }

    /// <summary>A mirror (re)appeared in the model: its link state goes to its port again.</summary>
    internal void ReapplyMirror(MirrorInfo mirror)
    {
        if (_links.TryGetValue(mirror.IfIndex, out LinkState? l))
            ApplyMirror(mirror, l);
    }

    private void ApplyMirror(MirrorInfo mirror, LinkState l)
    {
        ushort mtu = (ushort)Math.Min(l.Mtu, ushort.MaxValue);
        MacAddress? mac = l.HasMac ? new MacAddress(l.Mac) : null;
        MacAddress portMac = _ns.ApplyMirrorLink?.Invoke(mirror, l.AdminUp, mtu, mac) ?? mirror.PortMac;
        _ns.Fib.SetPort(mirror.Port, l.AdminUp, NamespaceSync.EffectiveMtu(l.Mtu), portMac, mirror.Tun);
    }

    public void Delete(in LinkMsg m)
    {
        if (!_links.Remove(m.IfIndex, out LinkState? l))
            return;
        if (l.Vrf || l.Master != 0)
            _ns.BindingsChanged();
        if (_ns.Mirror(m.IfIndex) is MirrorInfo mirror)
        {
            _ns.Fib.ForgetPort(mirror.Port);
            _ns.Neighbors.ForgetMirror(mirror);
            _ns.MirrorDeleted?.Invoke(mirror);
            _ns.ResyncWanted = true; // its routes went with it (IPv4 silently)
        }
    }

    public void BeginSync()
    {
    }

    public int EndSync()
    {
        int n = 0;
        foreach (LinkState l in _links.Values.Where(l => l.Mark != _ns.Epoch).ToList())
        {
            Delete(new LinkMsg { Deleted = true, IfIndex = l.IfIndex });
            n++;
        }
        return n;
    }
}
