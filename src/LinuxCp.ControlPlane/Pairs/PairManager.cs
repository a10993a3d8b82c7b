using DpdkSharp;
using LinuxCp.Dataplane;
using LinuxCp.Dataplane.Tables;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Pairs;

/// <summary>Owns the ports and their mirrors. Creating a pair creates the mirror (a net_tap or
/// net_tun vdev) inside the pair's namespace, sets it up with one queue per worker and the
/// port's MAC and MTU, then publishes a poll table that x-connects the two. Deleting publishes
/// a table without the mirror, waits for the workers' grace period, then removes the device.
/// All methods are serialized by one lock; workers never see it.</summary>
public sealed class PairManager
{
    public const int MaxHostIfLength = 15; // IFNAMSIZ - 1

    private readonly object _lock = new();
    private readonly DataplaneEngine _dp;
    private readonly Mempool _pool;
    private readonly ILogger _log;
    private readonly Dictionary<ushort, PortInfo> _phys = [];
    private readonly Dictionary<ushort, Pair> _pairs = []; // by phy port id
    private int _mirrorSeq;

    public PairManager(DataplaneEngine dp, Mempool pool, string? defaultNetns, ILogger log)
    {
        _dp = dp;
        _pool = pool;
        DefaultNetns = string.IsNullOrEmpty(defaultNetns) ? null : defaultNetns;
        _log = log;
    }

    public string? DefaultNetns { get; }

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
                string name = EthPort.Name(id);
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
                var info = new PortInfo(id, EthPort.Name(id), PortKind.Phy, EthPort.Mac(id), EthPort.Driver(id));
                EthPort.Setup(id, (ushort)_dp.WorkerCount, RxDescriptors, TxDescriptors, _pool);
                info = info with { Mac = logical ?? EthPort.Mac(id) };
                int rc = EthPort.AllMulticast(id);
                if (rc < 0)
                    Log.AllMultiUnsupported(_log, info.Name, Eal.StrError(-rc));
                _phys[id] = info;
                Log.PortAdopted(_log, info.Name, id, info.Driver, info.Mac.ToString());
            }
            PublishLocked();
        }
    }

    public IReadOnlyList<PortInfo> PhysicalPorts()
    {
        lock (_lock)
            return [.. _phys.Values.OrderBy(p => p.Id)];
    }

    public IReadOnlyList<Pair> Pairs()
    {
        lock (_lock)
            return [.. _pairs.Values.OrderBy(p => p.Phy.Id)];
    }

    /// <summary>Every port lcpd polls, phys and mirrors, by port id.</summary>
    public IReadOnlyList<PortInfo> AllPorts()
    {
        lock (_lock)
            return [.. _phys.Values.Concat(_pairs.Values.Select(p => p.Mirror)).OrderBy(p => p.Id)];
    }

    /// <summary>Resolves a port given as a DPDK device name or a port id.</summary>
    public PortInfo ResolvePort(string spec)
    {
        lock (_lock)
            return ResolveLocked(spec);
    }

    private PortInfo ResolveLocked(string spec)
    {
        if (ushort.TryParse(spec, out ushort id) && _phys.TryGetValue(id, out PortInfo? byId))
            return byId;
        foreach (PortInfo p in _phys.Values)
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

    /// <summary>Creates a pair. Throws <see cref="PairException"/> with an operator-facing reason.</summary>
    public Pair Create(string portSpec, string hostIf, string? netns, bool tun, bool persist = false)
    {
        // Lock order: routing lock before pair lock (the netlink thread holds the routing lock
        // when it applies link state here), so the event is raised after ours is released.
        Pair created = CreateLocked(portSpec, hostIf, netns, tun, persist);
        PairChanged?.Invoke(created, true);
        return created;
    }

    private Pair CreateLocked(string portSpec, string hostIf, string? netns, bool tun, bool persist)
    {
        lock (_lock)
        {
            PortInfo phy = ResolveLocked(portSpec);
            if (ValidateHostIf(hostIf) is string bad)
                throw new PairException(bad);
            string? ns = string.IsNullOrEmpty(netns) ? DefaultNetns : netns;
            if (ns is not null && !Netns.IsValidName(ns))
                throw new PairException($"bad netns name '{ns}'");
            if (_pairs.TryGetValue(phy.Id, out Pair? existing))
                throw new PairException($"port {phy.Name} is already paired with {existing.HostIf}");
            foreach (Pair p in _pairs.Values)
                if (p.HostIf == hostIf && p.Netns == ns)
                    throw new PairException($"host-if {hostIf} is already used by the pair of {p.Phy.Name}");

            if (ns is not null)
            {
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
            if (Netns.IfIndex(ns, hostIf) > 0)
                throw new PairException($"an interface named {hostIf} already exists in {NsLabel(ns)}");

            int seq = ++_mirrorSeq;
            string dev = tun ? $"net_tun_lcp{seq}" : $"net_tap_lcp{seq}";
            string devargs = tun ? $"{dev},iface={hostIf}" : $"{dev},iface={hostIf},mac={phy.Mac}";
            if (persist)
                devargs += ",persist";
            int rc = Netns.ProbeDevice(ns, devargs);
            if (rc < 0)
                throw new PairException($"cannot create {(tun ? "TUN" : "TAP")} {hostIf} in {NsLabel(ns)}: {Eal.StrError(-rc)}");
            if (!EthPort.TryGetByName(dev, out ushort mirrorId))
                throw new PairException($"mirror device {dev} was probed but has no port");

            try
            {
                _dp.ClearPortCounters(mirrorId);
                EthPort.SetupInNetns(ns, mirrorId, (ushort)_dp.WorkerCount, RxDescriptors, TxDescriptors, _pool);
                ushort mtu = EthPort.Mtu(phy.Id);
                if (mtu != 0 && EthPort.SetMtu(mirrorId, mtu) is int mrc and < 0)
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
            var pair = new Pair(phy, mirror, hostIf, ns, tun, ifindex, persist);
            _pairs[phy.Id] = pair;
            PublishLocked();
            Log.PairCreated(_log, phy.Name, hostIf, NsLabel(ns), tun ? "tun" : "tap", ifindex);
            return pair;
        }
    }

    /// <summary>Raised after a pair was created or deleted (outside the manager's lock).</summary>
    public event Action<Pair, bool>? PairChanged;

    /// <summary>Applies Linux's link settings of a mirror to its port: admin state (a down
    /// mirror stops forwarding through the port), MTU, MAC. Returns the updated pair.</summary>
    public Pair ApplyMirrorLink(Pair pair, bool adminUp, ushort mtu, MacAddress? mac)
    {
        lock (_lock)
        {
            if (!_pairs.TryGetValue(pair.Phy.Id, out Pair? cur) || cur.Mirror.Id != pair.Mirror.Id)
                return pair;
            Pair next = cur with { AdminUp = adminUp };
            if (mtu != 0 && mtu != EthPort.Mtu(cur.Phy.Id))
            {
                int rc = EthPort.SetMtu(cur.Phy.Id, mtu);
                if (rc < 0)
                    Log.PortMtuFailed(_log, cur.Phy.Name, mtu, Eal.StrError(-rc));
            }
            if (mac is MacAddress m && m != cur.Phy.Mac && !cur.Tun)
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
                _pairs[cur.Phy.Id] = next;
                PublishLocked();
            }
            return next;
        }
    }

    /// <summary>Deletes the pair of a port, given by port name/id or by host-if name.</summary>
    public Pair Delete(string portOrHostIf)
    {
        Pair deleted = DeleteLocked(portOrHostIf);
        PairChanged?.Invoke(deleted, false);
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
            _pairs.Remove(pair.Phy.Id);
            RemoveMirrorLocked(pair);
            Log.PairDeleted(_log, pair.Phy.Name, pair.HostIf);
            return pair;
        }
    }

    /// <summary>Removes every mirror (shutdown). Workers must be stopped or will be given an
    /// empty table first.</summary>
    public void DeleteAll()
    {
        lock (_lock)
        {
            var all = _pairs.Values.ToList();
            _pairs.Clear();
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
            foreach (PortInfo p in _phys.Values)
                EthPort.Remove(p.Id);
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
        foreach (PortInfo phy in _phys.Values.OrderBy(p => p.Id))
        {
            if (_pairs.TryGetValue(phy.Id, out Pair? pair))
            {
                ushort m = pair.Mirror.Id;
                entries.Add(new PollEntry(phy.Id, m, pair.Tun ? PollKind.PhyToTun : PollKind.PhyToTap, pair.Phy.Mac.Bits, 0, !pair.AdminUp));
                entries.Add(new PollEntry(m, phy.Id, pair.Tun ? PollKind.TunToPhy : PollKind.TapToPhy, pair.Mirror.Mac.Bits, pair.Phy.Mac.Bits));
            }
            else
            {
                entries.Add(new PollEntry(phy.Id, phy.Id, PollKind.PhyUnpaired, phy.Mac.Bits, 0));
            }
        }
        return _dp.Publish([.. entries]);
    }

    private static string NsLabel(string? ns) => ns is null ? "the default namespace" : $"netns {ns}";
}
