namespace LinuxCp.Management.Contracts;

// JSON shapes of the lcpctl/API contract (docs/cli.md). Property names are snake_case on the wire.

public sealed record InterfaceDto(
    string Name, int PortId, string Kind, string Mac, int Mtu, bool AdminUp, bool LinkUp,
    long RxPackets, long TxPackets, long RxBytes, long TxBytes, long Drops, long Punts, long Forwarded = 0);

public sealed record FibPathDto(string? Via, string Interface, bool Resolved);

public sealed record FibRouteDto(string Prefix, string Type, string Source, List<FibPathDto> Paths);

public sealed record FibSummaryDto(long Ipv4, long Ipv6, long Commits, long FibErrors);

public sealed record NeighborDto(string Ip, string Mac, string Interface);

public sealed record ResyncDto(int Objects, long Resyncs, long Overruns, long Malformed);

public sealed record LcpDto(string Port, string HostIf, string? Netns, string Kind, int HostIfindex);

public sealed record ErrorCounterDto(string Reason, string Kind, long Count, string Description);

public sealed record BufferDto(string Pool, long Size, long InUse, long Available);

public sealed record WorkerDto(
    int Worker, int Lcore, int Queue, bool Running, long Iterations, double MaxLoopGapUs,
    bool WarmedUp, long AllocatedBytesSinceWarmup, string? Failure);

public sealed record VersionDto(string Version, string Dpdk, string Runtime, int ApiVersion);
