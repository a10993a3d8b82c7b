using DpdkSharp;
using Microsoft.Extensions.Logging;

namespace LinuxCp.ControlPlane.Pairs;

/// <summary>A bond on the launch line: <c>--bond &lt;name&gt;=&lt;port&gt;,&lt;port&gt;[,mode=...][,hash=...]</c>.</summary>
public sealed record BondSpec(string Name, IReadOnlyList<string> Members, BondMode Mode, BondHash Hash);

/// <summary>A bond member as <c>show bond</c> reports it: in the bond or taken out (its link is
/// down), active (carrying traffic), its link, its 802.3ad state, how often it left the bond.</summary>
public sealed record BondMemberView(string Name, ushort PortId, bool InBond, bool Active, bool LinkUp, LacpInfo? Lacp, long Removals,
    DateTime? LastChange, string? KernelIf);

public sealed record BondView(string Name, ushort PortId, BondMode Mode, BondHash Hash, MacAddress Mac, IReadOnlyList<BondMemberView> Members);

/// <summary>Bonds: DPDK's bonding PMD (net_bonding, 802.3ad with its LACP state machine on an EAL
/// alarm) over member ports, made before the ports are adopted; the bond is a port like any other
/// (pairs, features, counters) and its members are not ports of their own. Members whose PMD
/// cannot see its link (af_packet, af_xdp: they always report up) are watched by lcpd: when the
/// kernel interface loses its carrier the member is taken out of the bond at once (its flows move
/// to the others), and after the workers' grace period closed; when the carrier is back it is
/// opened again with its device arguments and added back, and LACP brings it into the distribution.</summary>
public sealed partial class PairManager
{
    private sealed class BondMember
    {
        public required string Device;
        public required string Devargs;
        public required string Driver;
        public ushort Id;
        public bool InBond = true;
        public string? KernelIf;
        public long Removals;
        public DateTime? LastChange;
        public string? Error; // said once, retried every poll
    }

    private sealed class BondState
    {
        public required string Name;
        public required ushort Port;
        public required BondMode Mode;
        public required BondHash Hash;
        public required List<BondMember> Members;
    }

    private readonly Dictionary<ushort, BondState> _bonds = []; // by bond port id

    public const int MaxBondNameLength = 15;

    /// <summary>Creates the bonds over ports EAL probed. Call before <see cref="AdoptPhysicalPorts"/>:
    /// a member must not be set up as a port of its own.</summary>
    public void CreateBonds(IEnumerable<BondSpec> specs)
    {
        lock (_lock)
        {
            var used = new HashSet<ushort>();
            foreach (BondSpec spec in specs)
            {
                if (spec.Name.Length is 0 or > MaxBondNameLength || !spec.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                    throw new PairException($"bond name '{spec.Name}': 1 to {MaxBondNameLength} letters, digits, '-' or '_'");
                if (spec.Members.Count < 2)
                    throw new PairException($"bond {spec.Name}: give it two members or more");
                var members = new List<BondMember>();
                foreach (string m in spec.Members)
                {
                    if (!(EthPort.TryGetByName(m, out ushort id) || (ushort.TryParse(m, out id) && EthPort.IsValid(id))))
                        throw new PairException($"bond {spec.Name}: unknown member port '{m}'");
                    if (!used.Add(id))
                        throw new PairException($"bond {spec.Name}: port {EthPort.Name(id)} is a member twice (or of two bonds)");
                    string driver = EthPort.Driver(id);
                    int queues = int.TryParse(EthPort.Devarg(id, "qpairs") ?? EthPort.Devarg(id, "queue_count"), out int q) ? q : 1;
                    if (driver is "net_af_packet" or "net_af_xdp" && queues < _dp.WorkerCount)
                        throw new PairException($"bond {spec.Name}: member {EthPort.Name(id)} has {queues} queue pair(s) and the bond needs one per worker ({_dp.WorkerCount}): give it qpairs={_dp.WorkerCount}");
                    var member = new PortInfo(id, EthPort.Name(id), PortKind.Phy, EthPort.Mac(id), driver);
                    members.Add(new BondMember { Device = member.Name, Devargs = $"{member.Name},{EthPort.Devargs(id)}", Driver = driver, Id = id, KernelIf = KernelInterface(member) });
                }
                ushort port;
                try
                {
                    port = Bond.Create($"net_bonding_{spec.Name}", spec.Mode, spec.Hash, [.. members.Select(m => m.Id)], (int)EthPort.SocketId(members[0].Id));
                }
                catch (DpdkException e)
                {
                    throw new PairException($"bond {spec.Name}: {e.Message}");
                }
                _bonds[port] = new BondState { Name = spec.Name, Port = port, Mode = spec.Mode, Hash = spec.Hash, Members = members };
                Log.BondCreated(_log, spec.Name, port, spec.Mode.ToString(), spec.Hash.ToString(), string.Join(",", members.Select(m => m.Device)));
            }
        }
    }

    private bool IsBondMember(ushort id) => _bonds.Values.Any(b => b.Members.Any(m => m.InBond && m.Id == id));

    /// <summary>The name a port is known by: a bond's own name, else the DPDK device's.</summary>
    private string PortName(ushort id) => _bonds.TryGetValue(id, out BondState? b) ? b.Name : EthPort.Name(id);

    /// <summary>The kernel interfaces behind a port: its own, or its members' for a bond.</summary>
    private IEnumerable<string> KernelInterfaces(PortInfo phy) =>
        _bonds.TryGetValue(phy.Id, out BondState? b) ? b.Members.Select(m => m.KernelIf).OfType<string>()
        : KernelInterface(phy) is string k ? [k] : [];

    /// <summary>Follows the members' links where their PMD cannot (see the class summary).
    /// Returns how many members changed. Runs on lcp-sync's thread.</summary>
    public int SyncBondMembers()
    {
        int changed = 0;
        lock (_lock)
        {
            foreach (BondState b in _bonds.Values)
            {
                foreach (BondMember m in b.Members)
                {
                    if (m.KernelIf is not string kif)
                        continue;
                    if (LinkSync.KernelCarrier(null, kif) is not bool up)
                        continue; // cannot be told: leave the member as it is
                    if (m.InBond && !up)
                    {
                        if (Bond.RemoveMember(b.Port, m.Id) is int rc and < 0)
                        {
                            Failed(b, m, "remove", Eal.StrError(-rc));
                            continue;
                        }
                        m.Error = null;
                        m.InBond = false;
                        m.Removals++;
                        m.LastChange = DateTime.UtcNow;
                        changed++;
                        Log.BondMemberDown(_log, b.Name, m.Device, kif);
                        // A worker may still be inside the bond's burst with the member in hand: close
                        // it only after every worker passed a quiescent point (or at the next try).
                        if (PublishLocked())
                            EthPort.Remove(m.Id);
                        else
                            m.Id = ushort.MaxValue;
                    }
                    else if (!m.InBond && up)
                    {
                        if (m.Id != ushort.MaxValue && EthPort.IsValid(m.Id))
                            EthPort.Remove(m.Id);
                        int rc = Netns.ProbeDevice(null, m.Devargs);
                        if (rc < 0 || !EthPort.TryGetByName(m.Device, out ushort id))
                        {
                            Failed(b, m, "re-open", rc < 0 ? Eal.StrError(-rc) : "no port");
                            continue;
                        }
                        int arc = Bond.AddMember(b.Port, id);
                        if (arc < 0)
                        {
                            EthPort.Remove(id);
                            Failed(b, m, "add", Eal.StrError(-arc));
                            continue;
                        }
                        m.Error = null;
                        m.Id = id;
                        m.InBond = true;
                        m.LastChange = DateTime.UtcNow;
                        changed++;
                        Log.BondMemberUp(_log, b.Name, m.Device, kif);
                    }
                }
            }
        }
        return changed;
    }

    private void Failed(BondState b, BondMember m, string action, string reason)
    {
        string error = $"{action}: {reason}";
        if (m.Error == error)
            return;
        m.Error = error;
        Log.BondMemberFailed(_log, b.Name, m.Device, action, reason);
    }

    /// <summary>The bonds with their members' state.</summary>
    public IReadOnlyList<BondView> Bonds()
    {
        lock (_lock)
        {
            var list = new List<BondView>();
            foreach (BondState b in _bonds.Values.OrderBy(b => b.Port))
            {
                var (_, active) = Bond.Members(b.Port);
                var members = b.Members.Select(m => new BondMemberView(m.Device, m.Id, m.InBond, m.InBond && active.Contains(m.Id),
                    m.KernelIf is string k ? LinkSync.KernelCarrier(null, k) == true : m.InBond && EthPort.Link(m.Id).Up,
                    m.InBond && b.Mode == BondMode.Lacp ? Bond.Lacp(b.Port, m.Id) : null, m.Removals, m.LastChange, m.KernelIf)).ToList();
                list.Add(new BondView(b.Name, b.Port, b.Mode, b.Hash, EthPort.Mac(b.Port), members));
            }
            return list;
        }
    }

    /// <summary>Closes the bonds, then their members (shutdown, after the workers stopped).</summary>
    private void CloseBondsLocked()
    {
        foreach (BondState b in _bonds.Values)
        {
            EthPort.Remove(b.Port);
            foreach (BondMember m in b.Members)
                if (m.Id != ushort.MaxValue && EthPort.IsValid(m.Id))
                    EthPort.Remove(m.Id);
        }
        _bonds.Clear();
    }
}
