using DpdkSharp;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.Dataplane;
using LinuxCp.Dataplane.Tables;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Pairs;

/// <summary>Owns the ports and their mirrors. Creating a pair creates the mirror (a net_tap or
/// net_tun vdev) inside the pair's namespace — or adopts the persistent one a previous lcpd
/// left there — sets it up with one queue per worker, then publishes a poll table that
/// x-connects the two. Deleting publishes a table without the mirror, waits for the workers'
/// grace period, then removes the device. A mirror lost from outside (deleted, or its namespace
/// deleted) marks the pair down until it is re-created. All methods are serialized by one lock;
/// workers never see it.</summary>
public sealed partial class PairManager
{
    public const int MaxHostIfLength = 15; // IFNAMSIZ - 1

    private readonly object _lock = new();
    private readonly DataplaneEngine _dp;
    private readonly Mempool _pool;
    private readonly ILogger _log;
    private readonly Dictionary<ushort, PortInfo> _phys = [];
    private readonly Dictionary<ushort, Pair> _pairs = []; // by phy port (or sub-interface) id
    private readonly Dictionary<ushort, PortInfo> _subs = []; // sub-interfaces, by interface id
    private int _mirrorSeq;

    public PairManager(DataplaneEngine dp, Mempool pool, string? defaultNetns, ILogger log)
    {
        _dp = dp;
        _pool = pool;
        DefaultNetns = string.IsNullOrEmpty(defaultNetns) ? null : defaultNetns;
        _log = log;
    }

    public string? DefaultNetns { get; }

    /// <summary>Leave IPv6 on the kernel interface under an af_packet/af_xdp/pcap port even when
    /// its mirror has the same MAC (and so the same link-local address): --keep-port-ipv6.</summary>
    public bool KeepPortIpv6 { get; init; }

    /// <summary>Where /proc and /sys are read (tests give a synthetic tree).</summary>
    public Host.HostFacts Host { get; init; } = LinuxCp.ControlPlane.Host.HostFacts.Real;

    /// <summary>On a port with sub-interfaces, frames whose tags none of them has go to the
    /// port's own mirror as received (--unknown-vlan punt) instead of being dropped (vlan-unknown).</summary>
    public bool PuntUnknownVlan { get; init; }

    public ushort RxDescriptors { get; init; } = 1024;
    public ushort TxDescriptors { get; init; } = 1024;

    /// <summary>Takes every port EAL probed as a physical port: sets it up with one queue pair per
    /// worker, enables all-multicast (ND, routing protocols) and starts it.</summary>
    public void AdoptPhysicalPorts(IReadOnlyDictionary<string, MacAddress>? macs = null)
    {
        lock (_lock)
        {
            foreach (ushort id in EthPort.All())
            {
                if (IsBondMember(id))
                    continue; // the bond sets it up and polls it
                string name = PortName(id);
                MacAddress? logical = null;
                if (macs is not null && (macs.TryGetValue(name, out MacAddress want) || macs.TryGetValue(id.ToString(System.Globalization.CultureInfo.InvariantCulture), out want)))
                {
                    int mrc = EthPort.SetMac(id, want);
                    if (mrc == -95) // ENOTSUP: the PMD has no MAC filter to program (pcap, ...)
                    {
                        // lcpd filters L2 in software, so the address can still be the port's.
                        Log.PortMacSoftware(_log, name, want.ToString());
                        logical = want;
                    }
                    else if (mrc < 0)
                    {
                        throw new PairException($"port {name}: cannot set MAC {want}: {Eal.StrError(-mrc)}");
                    }
                }
                var info = new PortInfo(id, name, PortKind.Phy, EthPort.Mac(id), EthPort.Driver(id));
                EthPort.Setup(id, (ushort)_dp.WorkerCount, RxDescriptors, TxDescriptors, _pool);
                info = info with { Mac = logical ?? EthPort.Mac(id) };
                ReceiveMulticast(id, info.Name);
                _phys[id] = info;
                Log.PortAdopted(_log, info.Name, id, info.Driver, info.Mac.ToString());
            }
            PublishLocked();
        }
    }

    /// <summary>Attaches an existing kernel interface (a VM's tap, a veth, a NIC without a DPDK
    /// driver) as a dataplane port: an af_packet (or, with <paramref name="xdp"/>, af_xdp) port
    /// opened on it from inside its namespace, named <c>net_af_packet_&lt;ifname&gt;</c>. Its kernel
    /// side is quietened as a NIC bound to DPDK would be (IPv6 off, no ARP replies, no IPv4
    /// forwarding of what arrives there: the dataplane forwards it); the old values come back when
    /// it is detached. It is a port like the others: pair it for Linux to have an address there.</summary>
    public PortInfo Attach(string ifname, string? netns, bool xdp = false)
    {
        PortInfo info;
        lock (_lock)
        {
            if (ValidateHostIf(ifname) is string bad)
                throw new PairException(bad.Replace("host-if", "interface", StringComparison.Ordinal));
            if (netns is not null && !Netns.IsValidName(netns))
                throw new PairException($"bad netns name '{netns}'");
            string where = NsLabel(netns);
            if (_phys.Values.FirstOrDefault(p => p.Attached is { } a && a.Ifname == ifname && a.Netns == netns) is PortInfo dup)
                throw new PairException($"{ifname} in {where} is attached already (port {dup.Name})");
            if (_pairs.Values.FirstOrDefault(p => p.HostIf == ifname && p.Netns == netns) is Pair mine)
                throw new PairException($"{ifname} in {where} is the mirror of {mine.Phy.Name}, not an interface to attach");
            if (Netns.IfIndex(netns, ifname) <= 0)
                throw new PairException($"no interface {ifname} in {where}");
            string dev = $"{(xdp ? "net_af_xdp" : "net_af_packet")}_{ifname}";
            if (EthPort.TryGetByName(dev, out _))
                throw new PairException($"a port named {dev} exists already");
            var saved = QuietKernelSide(netns, ifname);
            string devargs = xdp ? $"{dev},iface={ifname},queue_count={_dp.WorkerCount}"
                : $"{dev},iface={ifname},qpairs={_dp.WorkerCount},qdisc_bypass=1";
            int rc = Netns.ProbeDevice(netns, devargs);
            if (rc < 0 || !EthPort.TryGetByName(dev, out ushort id))
            {
                RestoreKernelSide(netns, ifname, saved);
                throw new PairException($"cannot attach {ifname} in {where}: {(rc < 0 ? Eal.StrError(-rc) : "the device has no port")}");
            }
            try
            {
                _dp.ClearPortCounters(id);
                EthPort.SetupInNetns(netns, id, (ushort)_dp.WorkerCount, RxDescriptors, TxDescriptors, _pool);
            }
            catch (DpdkException e)
            {
                EthPort.Remove(id);
                RestoreKernelSide(netns, ifname, saved);
                throw new PairException($"cannot set up {dev}: {e.Message}");
            }
            ReceiveMulticast(id, dev);
            info = new PortInfo(id, dev, PortKind.Phy, EthPort.Mac(id), EthPort.Driver(id), Attached: new AttachedIf(ifname, netns, saved));
            _phys[id] = info;
            PublishLocked();
            Log.PortAttached(_log, dev, id, ifname, where, info.Mac.ToString());
        }
        return info;
    }

    /// <summary>Detaches a port attached with <see cref="Attach"/> (by port name, id, or the
    /// interface's name): it leaves the poll table, then after the workers' grace period is
    /// closed, and the interface's kernel side gets its settings back. Its pairs go first.</summary>
    public PortInfo Detach(string spec)
    {
        PortInfo gone = DetachLocked(spec);
        PortRemoved?.Invoke(gone.Id);
        return gone;
    }

    private PortInfo DetachLocked(string spec)
    {
        lock (_lock)
        {
            PortInfo p = _phys.Values.FirstOrDefault(x => x.Attached?.Ifname == spec && x.Name != spec) is PortInfo byIf ? byIf : ResolveLocked(spec);
            if (p.Attached is not AttachedIf a)
                throw new PairException($"port {p.Name} was not attached (only ports made with attach can be detached)");
            if (_pairs.Values.FirstOrDefault(x => x.Phy.Id == p.Id || x.Phy.Sub?.Parent == p.Id) is Pair pair)
                throw new PairException($"port {p.Name} has a pair ({pair.HostIf}): delete it first");
            _phys.Remove(p.Id);
            if (!PublishLocked())
            {
                _phys[p.Id] = p;
                PublishLocked();
                throw new PairException($"a worker did not let go of {p.Name} in time; try again");
            }
            int rc = EthPort.Remove(p.Id);
            if (rc < 0)
                Log.MirrorRemoveFailed(_log, p.Name, Eal.StrError(-rc));
            RestoreKernelSide(a.Netns, a.Ifname, a.Saved);
            Log.PortDetached(_log, p.Name, a.Ifname, NsLabel(a.Netns));
            return p;
        }
    }

    // What an attached interface's kernel side must not do once the dataplane owns its traffic.
    private static readonly (string Path, string Value)[] s_quiet =
    [
        ("/proc/sys/net/ipv6/conf/{0}/disable_ipv6", "1"), // no IPv6 there: no ND, nothing forwarded
        ("/proc/sys/net/ipv4/conf/{0}/arp_ignore", "8"),   // no ARP replies for the namespace's addresses
        ("/proc/sys/net/ipv4/conf/{0}/forwarding", "0"),   // what arrives there is dropped, not forwarded, by Linux
    ];

    private Dictionary<string, string> QuietKernelSide(string? netns, string ifname)
    {
        var saved = new Dictionary<string, string>();
        foreach (var (pattern, value) in s_quiet)
        {
            string path = string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, ifname);
            int rc = Netns.Sysctl(netns, path, value, out string? old);
            if (rc == 0 && old is not null)
                saved[path] = old;
            else if (rc < 0)
                Log.AttachSysctlFailed(_log, ifname, path, Eal.StrError(-rc));
        }
        return saved;
    }

    private void RestoreKernelSide(string? netns, string ifname, IReadOnlyDictionary<string, string> saved)
    {
        foreach (var (path, value) in saved)
            if (Netns.Sysctl(netns, path, value, out _) is int rc and < 0 && rc != -2) // ENOENT: the interface is gone
                Log.AttachSysctlFailed(_log, ifname, path, Eal.StrError(-rc));
    }

    /// <summary>A port must hand lcpd its multicast (ARP broadcasts, ND, routing protocols):
    /// all-multicast, or where the PMD has none (af_packet, af_xdp, a bond over them) promiscuous
    /// mode; lcpd drops unicast for other MACs itself (l2-not-for-us).</summary>
    private void ReceiveMulticast(ushort id, string name)
    {
        int rc = EthPort.AllMulticast(id);
        if (rc >= 0)
            return;
        int prc = EthPort.Promiscuous(id);
        if (prc < 0)
            Log.AllMultiUnsupported(_log, name, $"{Eal.StrError(-rc)}; promiscuous mode failed too: {Eal.StrError(-prc)}");
    }

    public IReadOnlyList<PortInfo> PhysicalPorts()
    {
        lock (_lock)
            return [.. _phys.Values.OrderBy(p => p.Id)];
    }

    public IReadOnlyList<Pair> Pairs()
    {
        // Cached until a pair changes: the link poll asks ten times a second (pairs are
        // immutable records, so a cached list stays a consistent snapshot).
        lock (_lock)
            return _pairsCache ??= [.. _pairs.Values.OrderBy(p => p.Phy.Id)];
    }

    private Pair[]? _pairsCache;

    private void SetPairLocked(ushort port, Pair p)
    {
        _pairs[port] = p;
        _pairsCache = null;
    }

    private void RemovePairLocked(ushort port)
    {
        _pairs.Remove(port);
        _pairsCache = null;
    }

    /// <summary>The sub-interfaces (each exists while it has a pair), by id.</summary>
    public IReadOnlyList<PortInfo> SubInterfaces()
    {
        lock (_lock)
            return [.. _subs.Values.OrderBy(p => p.Id)];
    }

    /// <summary>Every port lcpd polls, phys and the mirrors of pairs that are up, by port id.</summary>
    public IReadOnlyList<PortInfo> AllPorts()
    {
        lock (_lock)
            return [.. _phys.Values.Concat(_pairs.Values.Where(p => p.State == PairState.Up).Select(p => p.Mirror)).OrderBy(p => p.Id)];
    }

    /// <summary>Resolves a port given as a DPDK device name or a port id.</summary>
    public PortInfo ResolvePort(string spec)
    {
        lock (_lock)
            return ResolveLocked(spec);
    }

    private PortInfo ResolveLocked(string spec)
    {
        if (ushort.TryParse(spec, out ushort id) && (_phys.TryGetValue(id, out PortInfo? byId) || _subs.TryGetValue(id, out byId)))
            return byId;
        foreach (PortInfo p in _phys.Values)
            if (p.Name == spec)
                return p;
        foreach (PortInfo p in _subs.Values)
            if (p.Name == spec)
                return p;
        if (EthPort.TryGetByName(spec, out ushort other) && !_phys.ContainsKey(other))
            throw new PairException($"port '{spec}' is a mirror, not a physical port");
        throw new PairException($"unknown port '{spec}' (known: {string.Join(", ", _phys.Values.OrderBy(p => p.Id).Select(p => $"{p.Id}={p.Name}"))})");
    }

    public static string? ValidateHostIf(string name)
    {
        if (name.Length is 0 or > MaxHostIfLength)
            return $"host-if '{name}' must be 1 to {MaxHostIfLength} characters";
        foreach (char c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                return $"host-if '{name}' may only contain letters, digits, '-', '_' and '.'";
        if (name is "." or "..")
            return $"host-if '{name}' is not a valid interface name";
        return null;
    }

    /// <summary>Raised after a pair changed (outside the manager's lock).</summary>
    public event Action<Pair, PairEvent>? PairChanged;

    /// <summary>Raised (outside the manager's lock) with the id of a port or sub-interface that no
    /// longer exists (detached, or a sub-interface deleted with its pair): whatever was set for
    /// that id must go, since a port made later may get it.</summary>
    public event Action<ushort>? PortRemoved;

    /// <summary>Creates a pair. <paramref name="portSpec"/> names a port, or a sub-interface of
    /// one (<c>&lt;port&gt;.&lt;vid&gt;</c>, QinQ <c>&lt;port&gt;.&lt;outer&gt;.&lt;inner&gt;</c> with
    /// an outer tag of <paramref name="tpid"/>, 802.1ad by default), which is made with the pair and
    /// goes with it. Throws <see cref="PairException"/> with an operator-facing reason.</summary>
    public Pair Create(string portSpec, string hostIf, string? netns, bool tun, bool persist = false, uint? table = null, ushort? tpid = null,
        MirrorKind? kind = null)
    {
        // Lock order: routing lock before pair lock (the netlink thread holds the routing lock
        // when it applies link state here), so the event is raised after ours is released.
        Pair created = CreateLocked(portSpec, hostIf, netns, kind ?? (tun ? MirrorKind.Tun : MirrorKind.Tap), persist, table, tpid);
        PairChanged?.Invoke(created, PairEvent.Created);
        return created;
    }

    /// <summary>Splits <c>&lt;port&gt;.&lt;vid&gt;[.&lt;vid&gt;]</c> into a phy port and tags (a port
    /// name that itself has dots, like a PCI address, is matched first). Null when it is not one.</summary>
    private (PortInfo Parent, VlanTags Tags)? ParseSubLocked(string spec, ushort? tpid)
    {
        static bool Vid(string s, out ushort v) => ushort.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out v);
        PortInfo? Phy(string name) => _phys.Values.FirstOrDefault(p => p.Name == name)
            ?? (ushort.TryParse(name, out ushort id) && _phys.TryGetValue(id, out PortInfo? byId) ? byId : null);
        int dot = spec.LastIndexOf('.');
        if (dot <= 0 || !Vid(spec[(dot + 1)..], out ushort last))
            return null;
        string head = spec[..dot];
        if (Phy(head) is PortInfo parent)
        {
            if (tpid is not null)
                throw new PairException($"tpid applies to the outer tag of a QinQ sub-interface (<port>.<outer>.<inner>), not to {spec}");
            return CheckVids(spec, parent, new VlanTags(VlanTags.Dot1q, last));
        }
        int dot2 = head.LastIndexOf('.');
        if (dot2 > 0 && Vid(head[(dot2 + 1)..], out ushort outer) && Phy(head[..dot2]) is PortInfo grand)
        {
            if (tpid is ushort t && t is not (VlanTags.Dot1q or VlanTags.Dot1ad))
                throw new PairException($"tpid 0x{t:x4}: the outer tag of a QinQ sub-interface is 802.1ad (88a8) or 802.1Q (8100)");
            return CheckVids(spec, grand, new VlanTags(tpid ?? VlanTags.Dot1ad, outer, last));
        }
        return null;

        static (PortInfo, VlanTags) CheckVids(string spec, PortInfo parent, VlanTags t)
        {
            if (!VlanTags.ValidVid(t.Outer) || (t.QinQ && !VlanTags.ValidVid(t.Inner)))
                throw new PairException($"sub-interface {spec}: a VLAN id is 1 to 4094");
            return (parent, t);
        }
    }

    /// <summary>The port a pair is made for: a known port or sub-interface, or a new sub-interface
    /// (registered by the caller once its mirror exists).</summary>
    private PortInfo ResolveForPairLocked(string spec, ushort? tpid, out bool newSub)
    {
        newSub = false;
        PortInfo? known = _phys.Values.FirstOrDefault(p => p.Name == spec) ?? _subs.Values.FirstOrDefault(p => p.Name == spec);
        if (known is null && ParseSubLocked(spec, tpid) is var (parent, tags))
        {
            string name = tags.QinQ ? $"{parent.Name}.{tags.Outer}.{tags.Inner}" : $"{parent.Name}.{tags.Outer}";
            PortInfo? same = _subs.Values.FirstOrDefault(s => s.Sub!.Parent == parent.Id && s.Sub.Tags.Outer == tags.Outer && s.Sub.Tags.Inner == tags.Inner);
            if (same is not null)
            {
                if (same.Sub!.Tags != tags)
                    throw new PairException($"sub-interface {same.Name} exists with {same.Sub.Tags}");
                return same;
            }
            ushort id = 0;
            for (int i = Dataplane.Interfaces.FirstSub; i < Dataplane.Interfaces.Max; i++)
            {
                if (!_subs.ContainsKey((ushort)i))
                {
                    id = (ushort)i;
                    break;
                }
            }
            if (id == 0)
                throw new PairException($"no room for sub-interface {name}: lcpd has {Dataplane.Interfaces.MaxSubs} at most");
            newSub = true;
            return new PortInfo(id, name, PortKind.Sub, parent.Mac, "vlan", new SubInfo(parent.Id, tags));
        }
        if (known is not null && tpid is not null && known.Kind != PortKind.Sub)
            throw new PairException($"tpid applies to a QinQ sub-interface, not to port {known.Name}");
        return known ?? ResolveLocked(spec);
    }

    private Pair CreateLocked(string portSpec, string hostIf, string? netns, MirrorKind kind, bool persist, uint? table, ushort? tpid)
    {
        lock (_lock)
        {
            bool tun = kind == MirrorKind.Tun;
            if (persist && kind is MirrorKind.VethPacket or MirrorKind.VethXdp)
                throw new PairException("a veth mirror cannot persist (its dataplane end lives in lcpd); persist is for TAP and TUN mirrors");
            PortInfo phy = ResolveForPairLocked(portSpec, tpid, out bool newSub);
            if (phy.Kind == PortKind.Sub && tun)
                throw new PairException($"sub-interface {phy.Name} is multi-point: its mirror is a TAP (tun is for point-to-point ports)");
            if (ValidateHostIf(hostIf) is string bad)
                throw new PairException(bad);
            string? ns = string.IsNullOrEmpty(netns) ? DefaultNetns : netns;
            if (ns is not null && !Netns.IsValidName(ns))
                throw new PairException($"bad netns name '{ns}'");
            if (table is 0 or 255)
                throw new PairException($"table {table} cannot forward (0 is unspecified, 255 is Linux's local table)");
            if (_pairs.TryGetValue(phy.Id, out Pair? existing))
                throw new PairException($"port {phy.Name} is already paired with {existing.HostIf}");
            foreach (Pair p in _pairs.Values)
                if (p.HostIf == hostIf && p.Netns == ns)
                    throw new PairException($"host-if {hostIf} is already used by the pair of {p.Phy.Name}");
            EnsureNetns(ns);
            LinkSnapshot? adopt = CheckExisting(ns, hostIf, tun, persist);
            if (newSub)
                _dp.ClearPortCounters(phy.Id);
            Pair pair = MakeMirror(phy, hostIf, ns, kind, persist, adopt) with { Table = table };
            if (newSub)
                _subs[phy.Id] = phy;
            SetPairLocked(phy.Id, pair);
            PublishLocked();
            if (adopt is not null)
                Log.PairAdopted(_log, phy.Name, hostIf, tun ? "TUN" : "TAP", NsLabel(ns), pair.HostIfIndex);
            else
                Log.PairCreated(_log, phy.Name, hostIf, NsLabel(ns), pair.KindName, pair.HostIfIndex);
            return pair;
        }
    }

    private void EnsureNetns(string? ns)
    {
        if (ns is null)
            return;
        try
        {
            if (Netns.Ensure(ns))
            {
                Log.NetnsCreated(_log, ns);
                if (Netns.InPrivateMountNamespace())
                    Log.NetnsPrivate(_log, ns);
            }
        }
        catch (DpdkException e)
        {
            throw new PairException($"cannot create netns '{ns}': {e.Message}");
        }
    }

    /// <summary>An interface of the mirror's name already there: a persistent mirror of ours that
    /// nobody holds (lcpd restarted) is adopted as it is; anything else is refused.</summary>
    private static LinkSnapshot? CheckExisting(string? ns, string hostIf, bool tun, bool persist)
    {
        if (Netns.IfIndex(ns, hostIf) <= 0)
            return null;
        string where = NsLabel(ns);
        if (!persist)
            throw new PairException($"an interface named {hostIf} already exists in {where} (to keep a mirror over restarts, create the pair with persist)");
        LinkSnapshot? link;
        try
        {
            link = LinkQuery.Get(ns, hostIf);
        }
        catch (Exception e) when (e is IOException or DpdkException)
        {
            throw new PairException($"an interface named {hostIf} exists in {where} and cannot be inspected: {e.Message}");
        }
        if (link is null)
            return null; // gone meanwhile
        if (link.Kind != "tun" || (tun ? !link.IsTun : !link.IsTap))
            throw new PairException($"an interface named {hostIf} already exists in {where} and is {(link.Kind.Length == 0 ? "not a tun/tap device" : $"a {(link.IsTun ? "TUN" : link.IsTap ? "TAP" : link.Kind)} device")}, not a persistent {(tun ? "TUN" : "TAP")} it could adopt");
        if (!link.TunPersist)
            throw new PairException($"{hostIf} in {where} is a {(tun ? "TUN" : "TAP")} but not persistent: another program owns it");
        if (link.TunQueues > 0)
            throw new PairException($"{hostIf} in {where} is in use by another process ({link.TunQueues} queue(s) attached; another lcpd?)");
        return link;
    }

    /// <summary>Creates (or adopts) the mirror device and sets it up; the pair is not registered yet.</summary>
    private Pair MakeMirror(PortInfo phy, string hostIf, string? ns, MirrorKind kind, bool persist, LinkSnapshot? adopt)
    {
        if (kind is MirrorKind.VethPacket or MirrorKind.VethXdp)
            return MakeVethMirror(phy, hostIf, ns, kind);
        bool tun = kind == MirrorKind.Tun;
        int seq = ++_mirrorSeq;
        string dev = tun ? $"net_tun_lcp{seq}" : $"net_tap_lcp{seq}";
        // An adopted TAP keeps the MAC Linux has for it (Linux is the control plane: if its MAC
        // was changed there, the port follows it, not the other way round).
        MacAddress mirrorMac = adopt?.Mac ?? phy.Mac;
        string devargs = tun ? $"{dev},iface={hostIf}" : $"{dev},iface={hostIf},mac={mirrorMac}";
        if (persist)
            devargs += ",persist";
        GuardPoolRoom(hostIf);
        if (!tun)
            GuardPortIpv6(phy, hostIf, mirrorMac);
        int rc = ProbeQuietly(ns, devargs, tun);
        if (rc < 0)
            throw new PairException($"cannot {(adopt is null ? "create" : "adopt")} {(tun ? "TUN" : "TAP")} {hostIf} in {NsLabel(ns)}: {Eal.StrError(-rc)}");
        if (!EthPort.TryGetByName(dev, out ushort mirrorId))
            throw new PairException($"mirror device {dev} was probed but has no port");
        try
        {
            _dp.ClearPortCounters(mirrorId);
            EthPort.SetupInNetns(ns, mirrorId, (ushort)_dp.WorkerCount, RxDescriptors, TxDescriptors, _pool);
            ushort mtu = EthPort.Mtu(phy.DpdkPort);
            // An adopted mirror keeps the MTU Linux gave it; the port follows (netlink).
            if (adopt is null && mtu != 0 && EthPort.SetMtu(mirrorId, mtu) is int mrc and < 0)
                Log.MirrorMtuFailed(_log, hostIf, mtu, Eal.StrError(-mrc));
        }
        catch (DpdkException e)
        {
            EthPort.Remove(mirrorId);
            throw new PairException($"cannot set up mirror {hostIf}: {e.Message}");
        }
        var mirror = new PortInfo(mirrorId, hostIf, tun ? PortKind.Tun : PortKind.Tap,
            tun ? phy.Mac : EthPort.Mac(mirrorId), EthPort.Driver(mirrorId));
        int ifindex = Netns.IfIndex(ns, hostIf);
        return new Pair(phy, mirror, hostIf, ns, tun, ifindex, persist, NetnsInode: Netns.Inode(ns), Adopted: adopt is not null, Kind: kind);
    }

    /// <summary>Most RX descriptors a TAP/TUN queue posts: the PMD reads with one readv of at
    /// most IOV_MAX (1024) iovecs, one of them its header.</summary>
    public const int TapRingMax = 1023;

    /// <summary>Mbufs kept free for the workers: a burst in flight per worker and the per-lcore
    /// caches (256, which may hold up to 1.5 times that) of the workers and the control thread.</summary>
    public long PoolReserve => (long)_dp.WorkerCount * 2 * Dataplane.Lcore.WorkerOptions.BurstSize + (_dp.WorkerCount + 1L) * 384;

    /// <summary>A TAP/TUN mirror takes its whole RX ring from the pool when it is set up and keeps
    /// it posted. Refuses, with the sizes, a mirror whose ring would leave the workers without
    /// mbufs (every frame would then be dropped as rx_nombuf), before anything is created.</summary>
    private void GuardPoolRoom(string hostIf)
    {
        long need = (long)Math.Min((int)RxDescriptors, TapRingMax) * _dp.WorkerCount;
        long free = _pool.Available, reserve = PoolReserve;
        if (free - need >= reserve)
            return;
        long want = _pool.Size + need + reserve - free;
        throw new PairException($"not enough free mbufs for {hostIf}'s RX ring: it takes {need} ({Math.Min((int)RxDescriptors, TapRingMax)} per queue, " +
            $"{_dp.WorkerCount} queue(s)), the pool has {free} of {_pool.Size} free and keeps {reserve} for the workers' bursts and caches: " +
            $"give --mbufs {want} or more (or a smaller --rx-desc)");
    }

    private static readonly string[] s_kernelBacked = ["net_af_packet", "net_af_xdp", "net_pcap"];

    /// <summary>The Linux interface a port's frames are read from (the iface= of an af_packet,
    /// af_xdp or pcap vdev), or null for a port that has none (PCI, memif, ...).</summary>
    public static string? KernelInterface(PortInfo phy) =>
        Array.IndexOf(s_kernelBacked, phy.Driver) >= 0 ? EthPort.Devarg(phy.Id, "iface") : null;

    /// <summary>A TAP mirror takes its port's MAC. When the port reads a kernel interface that has
    /// that MAC, both get the same IPv6 link-local address, the port sees that interface's own
    /// ND and punts it to the mirror, and the mirror's DAD fails (Linux then sends no neighbour
    /// solicitations there: IPv6 through the router stops, silently). The kernel interface's
    /// IPv6 serves nothing once lcpd owns the port, so it is turned off, with a log line.</summary>
    private void GuardPortIpv6(PortInfo phy, string hostIf, MacAddress mirrorMac)
    {
        foreach (string kif in KernelInterfaces(phy))
            GuardKernelIpv6(phy, kif, hostIf, mirrorMac);
    }

    private void GuardKernelIpv6(PortInfo phy, string kif, string hostIf, MacAddress mirrorMac)
    {
        if (Host.Ipv6Enabled(kif) != true)
            return;
        LinkSnapshot? link;
        try
        {
            link = LinkQuery.Get(null, kif);
        }
        catch (Exception e) when (e is IOException or DpdkException)
        {
            return;
        }
        if (link?.Mac is not MacAddress m || m != mirrorMac)
            return;
        if (KeepPortIpv6)
        {
            Log.PortIpv6Kept(_log, phy.Name, kif, hostIf);
            return;
        }
        if (Host.DisableIpv6(kif) is string err)
        {
            Log.PortIpv6OffFailed(_log, phy.Name, kif, hostIf, err);
            return;
        }
        Log.PortIpv6Off(_log, phy.Name, kif, hostIf);
        // What that interface sent before (its own DAD probes, for the very address the mirror is
        // about to claim) waits in the port's RX ring when the workers have not started yet; the
        // mirror must not see it. Running workers drain the ring themselves (unpaired: dropped).
        if (!_dp.Launched)
            EthPort.DrainRx(phy.Id, (ushort)_dp.WorkerCount);
    }

    private bool? _multiq;

    /// <summary>Probes a mirror. The TAP PMD asks the kernel for a multiq qdisc on every TAP (for
    /// rte_flow, which lcpd does not use) and logs four error lines per mirror where the kernel
    /// has none: said once here instead, and the PMD's errors are muted for the probe (a probe
    /// that fails still says why, through its return code).</summary>
    private int ProbeQuietly(string? ns, string devargs, bool tun)
    {
        if (tun)
            return Netns.ProbeDevice(ns, devargs);
        if (_multiq is null)
        {
            _multiq = Host.HasMultiqQdisc() ?? true;
            if (_multiq == false)
                Log.NoMultiq(_log);
        }
        if (_multiq == true)
            return Netns.ProbeDevice(ns, devargs);
        int prev = Eal.SetLogLevel("pmd.net.tap", 3); // RTE_LOG_CRIT
        try
        {
            return Netns.ProbeDevice(ns, devargs);
        }
        finally
        {
            if (prev > 0)
                Eal.SetLogLevel("pmd.net.tap", (uint)prev);
        }
    }

    /// <summary>Applies Linux's link settings of a mirror to its port: admin state (a down
    /// mirror stops forwarding through the port), MTU, MAC. Returns the updated pair.</summary>
    public Pair ApplyMirrorLink(Pair pair, bool adminUp, ushort mtu, MacAddress? mac)
    {
        lock (_lock)
        {
            if (!_pairs.TryGetValue(pair.Phy.Id, out Pair? cur) || cur.Mirror.Id != pair.Mirror.Id)
                return pair;
            Pair next = cur with { AdminUp = adminUp };
            // A sub-interface has no DPDK port: its MTU is checked per packet (the FIB's paths)
            // and its MAC is its parent's.
            bool sub = cur.Phy.Kind == PortKind.Sub;
            if (!sub && mtu != 0 && mtu != EthPort.Mtu(cur.Phy.Id))
            {
                int rc = EthPort.SetMtu(cur.Phy.Id, mtu);
                if (rc < 0)
                    Log.PortMtuFailed(_log, cur.Phy.Name, mtu, Eal.StrError(-rc));
            }
            if (mac is MacAddress m && m != cur.Phy.Mac && !cur.Tun && !sub)
            {
                int rc = EthPort.SetMac(cur.Phy.Id, m);
                if (rc < 0)
                    Log.PortMacFailed(_log, cur.Phy.Name, m.ToString(), Eal.StrError(-rc));
                else
                {
                    var phy = cur.Phy with { Mac = m };
                    _phys[phy.Id] = phy;
                    next = next with { Phy = phy, Mirror = cur.Mirror with { Mac = m } };
                }
            }
            if (next != cur)
            {
                SetPairLocked(cur.Phy.Id, next);
                PublishLocked();
            }
            return next;
        }
    }

    /// <summary>The pair whose mirror has this kernel ifindex in this namespace.</summary>
    public Pair? FindByMirror(string? netns, int ifindex)
    {
        lock (_lock)
            return _pairs.Values.FirstOrDefault(p => p.Netns == netns && p.HostIfIndex == ifindex);
    }

    /// <summary>The dataplane table a port forwards in (its poll entry carries the index).</summary>
    public void SetPortTable(ushort port, int tableIndex)
    {
        lock (_lock)
        {
            if (!_pairs.TryGetValue(port, out Pair? p) || p.TableIndex == tableIndex)
                return;
            SetPairLocked(port, p with { TableIndex = tableIndex });
            PublishLocked();
        }
    }

    /// <summary>Marks a pair down (its mirror was deleted from outside, or its namespace): its
    /// port is no longer punted to or polled on the mirror side. The mirror device is closed after
    /// the workers' grace period; <see cref="Recreate"/> brings the pair back.</summary>
    public Pair? MarkDown(ushort port, int ifindex, string reason)
    {
        Pair? down;
        lock (_lock)
        {
            if (!_pairs.TryGetValue(port, out Pair? p) || p.State != PairState.Up || p.HostIfIndex != ifindex)
                return null;
            // Once down, lcpd lets go of the namespace (listener sockets, the mirror's fds), so it
            // may really die and its inode number be handed to the next namespace: forget it.
            down = p with { State = PairState.Down, DownReason = reason, NetnsInode = 0 };
            SetPairLocked(port, down);
            RemoveMirrorLocked(p);
            Log.PairDown(_log, p.Phy.Name, p.HostIf, reason);
        }
        PairChanged?.Invoke(down, PairEvent.Down);
        return down;
    }

    /// <summary>Re-creates the mirror of a pair that is down, in its namespace (which must exist).
    /// Returns the pair, up again; throws <see cref="PairException"/> with the reason it cannot.</summary>
    public Pair Recreate(ushort port)
    {
        Pair up;
        lock (_lock)
        {
            if (!_pairs.TryGetValue(port, out Pair? p))
                throw new PairException($"port {port} has no pair");
            if (p.State == PairState.Up)
                return p;
            if (p.Netns is not null && Netns.Inode(p.Netns) == 0)
                throw new PairException($"netns {p.Netns} does not exist (the pair comes back when it does)");
            LinkSnapshot? adopt = CheckExisting(p.Netns, p.HostIf, p.Tun, p.Persist);
            Pair made = MakeMirror(p.Phy, p.HostIf, p.Netns, p.Kind, p.Persist, adopt);
            up = p with
            {
                Mirror = made.Mirror, HostIfIndex = made.HostIfIndex, NetnsInode = made.NetnsInode, State = PairState.Up,
                DownReason = null, Adopted = made.Adopted, AdminUp = true, VethPeer = made.VethPeer,
            };
            SetPairLocked(port, up);
            PublishLocked();
            Log.PairRecovered(_log, p.Phy.Name, p.HostIf, NsLabel(p.Netns), up.HostIfIndex);
        }
        PairChanged?.Invoke(up, PairEvent.Recovered);
        return up;
    }

    /// <summary>Compares each pair's namespace with what is under /run/netns now: a namespace
    /// deleted (or deleted and created again: another inode; while a pair is up, lcpd's own
    /// sockets keep its namespace alive, so the inode cannot be reused) marks its pairs down; a
    /// namespace that is back re-creates the mirrors that were lost with it. Returns what changed.</summary>
    public int CheckNamespaces()
    {
        int changed = 0;
        foreach (Pair p in Pairs())
        {
            if (p.Netns is null)
                continue;
            ulong now = Netns.Inode(p.Netns);
            if (p.State == PairState.Up && now != p.NetnsInode)
            {
                if (MarkDown(p.Phy.Id, p.HostIfIndex, now == 0 ? $"netns {p.Netns} was deleted" : $"netns {p.Netns} was deleted and created again") is not null)
                    changed++;
            }
            else if (p.State == PairState.Down && now != 0 && p.DownReason?.StartsWith("netns ", StringComparison.Ordinal) == true)
            {
                try
                {
                    Recreate(p.Phy.Id);
                    changed++;
                }
                catch (PairException e)
                {
                    Log.PairDown(_log, p.Phy.Name, p.HostIf, $"cannot re-create the mirror yet: {e.Message}");
                }
            }
        }
        return changed;
    }

    /// <summary>Deletes the pair of a port, given by port name/id or by host-if name.</summary>
    public Pair Delete(string portOrHostIf)
    {
        Pair deleted = DeleteLocked(portOrHostIf);
        PairChanged?.Invoke(deleted, PairEvent.Deleted);
        if (deleted.Phy.Sub is not null)
            PortRemoved?.Invoke(deleted.Phy.Id);
        return deleted;
    }

    private Pair DeleteLocked(string portOrHostIf)
    {
        lock (_lock)
        {
            Pair? pair = _pairs.Values.FirstOrDefault(p => p.HostIf == portOrHostIf);
            if (pair is null)
            {
                PortInfo phy;
                try
                {
                    phy = ResolveLocked(portOrHostIf);
                }
                catch (PairException)
                {
                    throw new PairException($"no pair for '{portOrHostIf}' (neither a paired port nor a host-if)");
                }
                if (!_pairs.TryGetValue(phy.Id, out pair))
                    throw new PairException($"port {phy.Name} has no pair");
            }
            RemovePairLocked(pair.Phy.Id);
            _subs.Remove(pair.Phy.Id); // a sub-interface lives as long as its pair
            if (pair.State == PairState.Up)
                RemoveMirrorLocked(pair);
            else
                PublishLocked();
            Log.PairDeleted(_log, pair.Phy.Name, pair.HostIf);
            return pair;
        }
    }

    /// <summary>Removes every mirror (shutdown). Workers must be stopped or will be given an
    /// empty table first. Persistent mirrors stay in Linux (with their addresses and routes).</summary>
    public void DeleteAll()
    {
        lock (_lock)
        {
            var all = _pairs.Values.Where(p => p.State == PairState.Up).ToList();
            _pairs.Clear();
            _pairsCache = null;
            _subs.Clear();
            PublishLocked();
            foreach (Pair p in all)
                RemoveDevice(p);
        }
    }

    /// <summary>Stops and closes the physical ports (shutdown, after the workers stopped).</summary>
    public void ClosePhysicalPorts()
    {
        lock (_lock)
        {
            foreach (ushort bond in _bonds.Keys)
                _phys.Remove(bond);
            CloseBondsLocked();
            foreach (PortInfo p in _phys.Values)
            {
                EthPort.Remove(p.Id);
                if (p.Attached is AttachedIf a)
                    RestoreKernelSide(a.Netns, a.Ifname, a.Saved);
            }
            _phys.Clear();
        }
    }

    // Mirrors unpublished while a worker missed the grace period: a worker may still hold the
    // old table, so closing the device could pull it from under a poll. They are closed after
    // the next publish whose grace period completes (or at shutdown).
    private readonly List<Pair> _removeLater = [];

    private void RemoveMirrorLocked(Pair pair)
    {
        if (!PublishLocked())
        {
            Log.MirrorRemovalDeferred(_log, pair.HostIf);
            _removeLater.Add(pair);
            return;
        }
        RemoveDevice(pair);
    }

    private void RemoveDevice(Pair pair)
    {
        int rc = EthPort.Remove(pair.Mirror.Id);
        if (rc < 0)
            Log.MirrorRemoveFailed(_log, pair.HostIf, Eal.StrError(-rc));
        if (pair.VethPeer is string dp)
            DeleteVethQuietly(dp);
    }

    private bool PublishLocked()
    {
        bool ok = PublishTableLocked();
        if (ok && _removeLater.Count != 0)
        {
            foreach (Pair p in _removeLater)
                RemoveDevice(p);
            _removeLater.Clear();
        }
        else if (!ok)
        {
            Log.GraceTimeout(_log);
        }
        return ok;
    }

    private bool PublishTableLocked()
    {
        var entries = new List<PollEntry>();
        var subs = new List<SubInterface>();
        foreach (PortInfo sub in _subs.Values.OrderBy(p => p.Id))
        {
            // A sub-interface is received on its parent's queues: its entry lives in the VLAN
            // table; its mirror is polled like any other.
            if (_pairs.TryGetValue(sub.Id, out Pair? sp) && sp.State == PairState.Up)
            {
                byte table = (byte)sp.TableIndex;
                subs.Add(new SubInterface(sub.Id, sub.Sub!.Parent, sub.Sub.Tags,
                    new PollEntry(sub.Id, sp.Mirror.Id, PollKind.PhyToTap, ParentMac(sub), 0, !sp.AdminUp, table)));
                entries.Add(new PollEntry(sp.Mirror.Id, sub.Id, PollKind.TapToPhy, sp.Mirror.Mac.Bits, ParentMac(sub), false, table));
            }
            else
            {
                subs.Add(new SubInterface(sub.Id, sub.Sub!.Parent, sub.Sub.Tags, new PollEntry(sub.Id, sub.Id, PollKind.PhyUnpaired, ParentMac(sub), 0)));
            }
        }
        var vlans = subs.Count == 0 ? VlanTable.Empty
            : new VlanTable(subs, PuntUnknownVlan, id => _phys.TryGetValue(id, out PortInfo? pp) && pp.Driver == "net_af_packet");
        foreach (PortInfo phy in _phys.Values.OrderBy(p => p.Id))
        {
            bool hasSubs = vlans.HasSubs(phy.Id);
            bool bond = _bonds.ContainsKey(phy.Id);
            if (_pairs.TryGetValue(phy.Id, out Pair? pair) && pair.State == PairState.Up)
            {
                ushort m = pair.Mirror.Id;
                byte table = (byte)pair.TableIndex;
                entries.Add(new PollEntry(phy.Id, m, pair.Tun ? PollKind.PhyToTun : PollKind.PhyToTap, pair.Phy.Mac.Bits, 0, !pair.AdminUp, table, hasSubs, bond));
                // The mirror's entry carries the table too: a TUN's packets look up their adjacency there.
                entries.Add(new PollEntry(m, phy.Id, pair.Tun ? PollKind.TunToPhy : PollKind.TapToPhy, pair.Mirror.Mac.Bits, pair.Phy.Mac.Bits, false, table));
            }
            else
            {
                // Unpaired, or its mirror is lost: nothing to punt to (counted as no-mirror).
                entries.Add(new PollEntry(phy.Id, phy.Id, PollKind.PhyUnpaired, (pair?.Phy ?? phy).Mac.Bits, 0, Subs: hasSubs, Bond: bond));
            }
        }
        return _dp.Publish([.. entries], vlans: vlans);
    }

    /// <summary>A sub-interface's MAC: its parent's, as it is now.</summary>
    private ulong ParentMac(PortInfo sub) => _phys.TryGetValue(sub.Sub!.Parent, out PortInfo? parent) ? parent.Mac.Bits : sub.Mac.Bits;

    internal static string NsLabel(string? ns) => ns is null ? "the default namespace" : $"netns {ns}";
}
