namespace LinuxCp.Management.Contracts;

// JSON shapes of the lcpctl/API contract (docs/cli.md). Property names are snake_case on the wire.

public sealed record InterfaceDto(
    string Name, int PortId, string Kind, string Mac, int Mtu, bool AdminUp, bool LinkUp,
    long RxPackets, long TxPackets, long RxBytes, long TxBytes, long Drops, long Punts);

public sealed record LcpDto(string Port, string HostIf, string? Netns, string Kind, int HostIfindex);

public sealed record ErrorCounterDto(string Reason, string Kind, long Count, string Description);

public sealed record BufferDto(string Pool, long Size, long InUse, long Available);

public sealed record WorkerDto(
    int Worker, int Lcore, int Queue, bool Running, long Iterations, double MaxLoopGapUs,
    bool WarmedUp, long AllocatedBytesSinceWarmup, string? Failure);

public sealed record VersionDto(string Version, string Dpdk, string Runtime, int ApiVersion);
