using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane.Fib;

namespace LinuxCp.ControlPlane.Sync;

/// <summary>Addresses (RTM_NEWADDR/DELADDR): every address of the namespace, on any interface,
/// is a local destination: a host route that punts, in every table a port of this namespace
/// forwards in (Linux looks up its local table before any other, whatever the input
/// interface). An address on two interfaces stays local until the last one goes.</summary>
public sealed class AddressHandler : INetlinkHandler<AddrMsg>
{
    private readonly record struct AddrKey(bool V6, UInt128 Address, int IfIndex, int PrefixLength);

    private readonly NamespaceSync _ns;
    private readonly Dictionary<AddrKey, (byte Mark, uint Flags)> _addrs = [];
    private readonly Dictionary<(bool, UInt128), int> _users = [];

    internal AddressHandler(NamespaceSync ns) => _ns = ns;

    public int Count => _addrs.Count;

    /// <summary>Addresses of an interface (for show commands and start-up checks).</summary>
    public IEnumerable<(bool V6, UInt128 Address, int PrefixLength, uint Flags)> Of(int ifindex) =>
        _addrs.Where(kv => kv.Key.IfIndex == ifindex).Select(kv => (kv.Key.V6, kv.Key.Address, kv.Key.PrefixLength, kv.Value.Flags));

    /// <summary>IFA_F_DADFAILED.</summary>
    public const uint DadFailedFlag = 0x08;

    public void Add(in AddrMsg m)
    {
        var key = new AddrKey(m.V6, m.Address, m.IfIndex, m.PrefixLength);
        bool known = _addrs.TryGetValue(key, out var before);
        _addrs[key] = (_ns.Epoch, m.Flags);
        if (m.V6 && (m.Flags & DadFailedFlag) != 0 && (!known || (before.Flags & DadFailedFlag) == 0) && _ns.Mirror(m.IfIndex) is MirrorInfo mi)
            _ns.DadFailed?.Invoke(mi, Prefix.Format(true, m.Address));
        if (known)
            return;
        var a = (m.V6, m.Address);
        _users.TryGetValue(a, out int n);
        _users[a] = n + 1;
        if (n == 0)
            Install(m.V6, m.Address, RouteTarget.LocalTarget);
    }

    public void Delete(in AddrMsg m)
    {
        if (!_addrs.Remove(new AddrKey(m.V6, m.Address, m.IfIndex, m.PrefixLength)))
            return;
        var a = (m.V6, m.Address);
        int n = _users[a] - 1;
        if (n > 0)
        {
            _users[a] = n;
            return;
        }
        _users.Remove(a);
        Install(m.V6, m.Address, null);
    }

    private void Install(bool v6, UInt128 address, RouteTarget? target)
    {
        Prefix host = Prefix.Host(v6, address);
        foreach (int index in _ns.ActiveTables.Values)
            _ns.Fib.Set(index, host, RouteSource.Local, target);
    }

    /// <summary>A table became active: every local address goes into it.</summary>
    internal void InstallTable(int index)
    {
        foreach (var (v6, address) in _users.Keys)
            _ns.Fib.Set(index, Prefix.Host(v6, address), RouteSource.Local, RouteTarget.LocalTarget);
    }

    internal void RemoveTable(int index)
    {
        foreach (var (v6, address) in _users.Keys)
            _ns.Fib.Set(index, Prefix.Host(v6, address), RouteSource.Local, null);
    }

    public void BeginSync()
    {
    }

    public int EndSync()
    {
        var stale = _addrs.Where(kv => kv.Value.Mark != _ns.Epoch).Select(kv => kv.Key).ToList();
        foreach (AddrKey k in stale)
            Delete(new AddrMsg { Deleted = true, V6 = k.V6, Address = k.Address, IfIndex = k.IfIndex, PrefixLength = k.PrefixLength });
        return stale.Count;
    }
}
