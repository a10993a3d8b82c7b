namespace LinuxCp.Management.Contracts;

// JSON shapes of the lcpctl/API contract (docs/cli.md). Property names are snake_case on the wire.

/// <summary>A port, mirror or sub-interface (kind "sub": <paramref name="Parent"/> is its port,
/// <paramref name="Vlan"/> its tags, e.g. "dot1q 100" or "dot1ad 100 inner-dot1q 200").
/// <paramref name="KernelIf"/>: the kernel interface a port reads (af_packet, af_xdp, pcap, an
/// attached interface), in <paramref name="KernelNetns"/> (null: lcpd's namespace).</summary>
public sealed record InterfaceDto(
    string Name, int PortId, string Kind, string Mac, int Mtu, bool AdminUp, bool LinkUp,
    long RxPackets, long TxPackets, long RxBytes, long TxBytes, long Drops, long Punts, long Forwarded = 0,
    string? Parent = null, string? Vlan = null, string? KernelIf = null, string? KernelNetns = null);

/// <summary>A bond (show bond): its mode and hash, and its members.</summary>
public sealed record BondDto(string Name, int PortId, string Mode, string Hash, string Mac, bool LinkUp, List<BondMemberDto> Members);

/// <summary>A bond member: in the bond or taken out (its link down), active (distributing), its
/// link; for LACP its selection, actor and partner states (the 802.1AX bit names), the partner's
/// system and port, the aggregator; counters of the member port; how often it left the bond.</summary>
public sealed record BondMemberDto(string Name, int PortId, bool InBond, bool Active, bool LinkUp, string? Selection,
    List<string>? ActorState, List<string>? PartnerState, string? PartnerSystem, int? PartnerPort, int? Aggregator,
    long RxPackets, long TxPackets, long Removals, DateTime? LastChange, string? KernelIf);

/// <summary>What set interface state|mtu did: the port, its mirror (null: unpaired, changed
/// directly), the admin state and MTU asked for, and a note when the driver could not follow.</summary>
public sealed record InterfaceStateDto(string Port, string? HostIf, bool AdminUp, int Mtu, string? Note);

public sealed record FibPathDto(string? Via, string Interface, bool Resolved);

/// <summary>One FIB entry. <paramref name="Table"/>: the kernel table it mirrors;
/// <paramref name="NexthopId"/>: the kernel nexthop object it follows (null: its own next hops).</summary>
public sealed record FibRouteDto(string Prefix, string Type, string Source, List<FibPathDto> Paths, uint Table = 254, uint? NexthopId = null);

/// <summary>One dataplane table: the kernel table (and namespace) it mirrors, its prefixes and
/// capacity per family, prefixes refused for lack of space, and whether it could not grow.</summary>
public sealed record FibTableDto(uint Table, string? Netns, int Index, long Ipv4, long Ipv6, long Ipv4Capacity, long Ipv6Capacity,
    long Ipv4Tbl8, long Ipv6Tbl8, long Refused, bool Full);

/// <summary>FIB totals. Pending: changes accepted and not yet in the dataplane; refused: prefixes
/// that punt to Linux for lack of table space; syncing: a dump (start-up or resync) is being
/// applied, sync_progress objects so far.</summary>
public sealed record FibSummaryDto(long Ipv4, long Ipv6, long Commits, long FibErrors, long Pending, long Refused, long GraceTimeouts,
    int Groups, int Paths, int Nexthops, int Targets, bool Syncing, long SyncProgress, List<FibTableDto> Tables);

/// <summary>Result of lcp verify: in sync, prefixes compared, rounds run, and the differences.</summary>
public sealed record VerifyDto(bool InSync, long Checked, int Rounds, List<VerifyDiffDto> Differences);

public sealed record VerifyDiffDto(string? Netns, uint Table, string Prefix, string Problem, string? Kernel, string? Fib);

public sealed record NeighborDto(string Ip, string Mac, string Interface);

public sealed record ResyncDto(long Objects, long Resyncs, long Overruns, long Malformed, int Recovered = 0);

/// <summary>A pair. State up/down (reason when down: its mirror was deleted, its namespace
/// deleted, ...); the kernel table its port forwards in and where that binding comes from
/// (explicit, vrf, rule, main); persist; adopted: the mirror existed and was taken over at start.
/// Both sides' link state: the port's link, the mirror's admin state and carrier as the kernel
/// reports them; link_changes: carrier changes lcp-sync gave the mirror; link_pending: a port
/// link change waits out the hold-down.</summary>
public sealed record LcpDto(string Port, string HostIf, string? Netns, string Kind, int HostIfindex,
    string State = "up", string? Reason = null, uint Table = 254, string TableSource = "main", bool Persist = false, bool Adopted = false,
    bool? PortLinkUp = null, bool MirrorAdminUp = true, bool? MirrorCarrier = null, long LinkChanges = 0, bool LinkPending = false);

public sealed record ErrorCounterDto(string Reason, string Kind, long Count, string Description, List<long> PerWorker);

public sealed record BufferDto(string Pool, long Size, long InUse, long Available);

public sealed record WorkerDto(
    int Worker, int Lcore, int Queue, bool Running, long Iterations, double MaxLoopGapUs,
    bool WarmedUp, long AllocatedBytesSinceWarmup, string? Failure, List<RuntimePathDto> Paths);

/// <summary>One path of one worker: calls and packets since the last clear; packets per call;
/// cycles per packet measured on sampled iterations (null until a sample carried packets).</summary>
public sealed record RuntimePathDto(string Path, long Calls, long Packets, double PacketsPerCall, double? CyclesPerPacket);

/// <summary>Latency percentiles of one path, merged over workers, in microseconds.</summary>
public sealed record LatencyDto(string Path, long Samples, double P50Us, double P90Us, double P99Us, double P999Us, double MaxUs, double MeanUs,
    [property: System.Text.Json.Serialization.JsonPropertyName("over_100us")] long Over100Us,
    [property: System.Text.Json.Serialization.JsonPropertyName("over_1ms")] long Over1Ms);

public sealed record TraceStatusDto(int Armed, int Pending, int Records, string? Port);

public sealed record TraceStepDto(string Step, string Detail);

public sealed record TracePacketDto(
    int Index, int Worker, double TimeUs, string RxInterface, int RxPort, long Length, string Outcome,
    string? Reason, string? TxInterface, List<TraceStepDto> Steps);

public sealed record CaptureDto(bool Running, string? File, string? Port, string? Direction, long Max, long Written, long Dropped, string? Error);

public sealed record LcoreDto(int Lcore, string Cpus, string Role, int? Worker, int? Queue);

public sealed record DpdkPortDto(int PortId, string Name, string Driver, int Socket, int Queues);

public sealed record DpdkDto(string Version, List<string> EalArgs, bool Hugepages, int MainLcore, List<LcoreDto> Lcores,
    List<DpdkPortDto> Ports, List<BufferDto> Mempools);

public sealed record MemoryDto(
    long ManagedHeapBytes, long ManagedCommittedBytes, long TotalAllocatedBytes,
    long Gen0Collections, long Gen1Collections, long Gen2Collections, double GcPauseTotalMs, double GcPausePercent,
    long RssBytes, long HugepagesTotal, long HugepagesFree, long HugepageSizeBytes,
    long DpdkHeapBytes, long DpdkHeapFreeBytes, long DpdkHeapAllocatedBytes,
    long GcSuspensions, double GcMaxSuspendMs, string GcLast, IReadOnlyDictionary<string, long> GcTriggers);

public sealed record LogLevelDto(string Level);

public sealed record VersionDto(string Version, string Dpdk, string Runtime, int ApiVersion);

/// <summary>A classifier rule with its counters (show classify, classify add rule). For ICMP
/// rules sport/dport are the type and code ranges; src/dst "any-ip4"/"any-ip6" match any
/// address of the rule's family; rule is the rule in `classify add rule` words.</summary>
public sealed record ClassifyRuleDto(uint Id, string Port, string Dir, string Src, string Dst, string Proto, string Sport, string Dport,
    string Action, int Priority, long Packets, long Bytes, string Rule);

public sealed record ClassifyDeleteDto(int Deleted);

/// <summary>A punt policer class: its budget per port (rate in packets/s and burst; null when the
/// class is not policed) and what it let through and dropped (on every port, or on one).</summary>
public sealed record PuntPolicerDto(string Class, long? Rate, long? Burst, long Passed, long Policed, string Description, string? Port);

/// <summary>A tracked flow (show flows): endpoints as the flow's first packet had them; ages in seconds.</summary>
public sealed record FlowDto(int Worker, string Port, string Proto, string Src, int Sport, string Dst, int Dport, string State,
    ulong Packets, ulong Bytes, double AgeS, double IdleS, bool Reflected);

public sealed record FlowTimeoutsDto(uint TcpEstablished, uint TcpTransitory, uint Udp, uint Icmp, uint Other);

/// <summary>The flow tables summed over the workers (show flow summary).</summary>
public sealed record FlowSummaryDto(long Flows, long New, long Established, long FinWait, long Closed, long Inserts, long Expiries,
    long TableFull, long Capacity, int BytesPerFlow, List<string> Tracked, string FullPolicy, FlowTimeoutsDto TimeoutsS);
