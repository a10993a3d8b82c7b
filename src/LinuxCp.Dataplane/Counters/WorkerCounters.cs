using System.Runtime.CompilerServices;
using DpdkSharp;

namespace LinuxCp.Dataplane.Counters;

/// <summary>Index of a per-port counter within a port's 64-byte block.</summary>
public enum PortCounter
{
    RxPackets,
    RxBytes,
    TxPackets,
    TxBytes,
    Drops,
    Punts,
    TxErrors,
    /// <summary>Received on this port and forwarded by the fast path.</summary>
    Forwarded,
}

/// <summary>A stage of the per-burst work, as <c>show runtime</c> reports it.</summary>
public enum RuntimePath
{
    /// <summary>RX burst calls that returned packets (phy and mirror ports).</summary>
    Rx,
    /// <summary>Parse and classify a phy burst, deciding punt/drop/forward per packet.</summary>
    Classify,
    /// <summary>Bulk FIB lookups (one call per family per burst).</summary>
    Lookup,
    /// <summary>L2 rewrite, TTL/checksum and buffering per egress port.</summary>
    Rewrite,
    /// <summary>TX of punted packets to the receiving port's mirror.</summary>
    Punt,
    /// <summary>Mirror RX to its phy port (host -> phy), TX included.</summary>
    Xconnect,
    /// <summary>TX of forwarded packets on egress ports.</summary>
    Tx,
    /// <summary>Bulk free of dropped packets.</summary>
    Drop,
    /// <summary>Classifier rules (input and output features), on ports that have rules.</summary>
    Acl,
    /// <summary>The flow tracker on tracked ports' bursts.</summary>
    Flow,
    Count,
}

/// <summary>Per-path latency histograms: time from the RX burst returning to the TX call for
/// the packets returning, and the gap between two loop iterations.</summary>
public enum LatencyPath
{
    Forward,
    Punt,
    Xconnect,
    LoopGap,
    Count,
}

/// <summary>One worker's counters. Only that worker writes them (plain stores); readers sum
/// across workers and tolerate a torn view of the current burst. Each port owns a 64-byte block;
/// the arrays carry a cache line of padding at both ends so two workers never share a line.</summary>
public sealed class WorkerCounters
{
    public const int PerPort = 8;
    private const int Pad = 8; // one cache line of longs

    private readonly long[] _ports = new long[Pad + Interfaces.Max * PerPort + Pad];
    private readonly long[] _reasons = new long[Pad + (int)Counters.Reason.Count + Pad];

    /// <summary>Per path: calls, packets, and over sampled bursts only: packets and TSC cycles.</summary>
    public const int PerPath = 4;
    private readonly long[] _paths = new long[Pad + (int)RuntimePath.Count * PerPath + Pad];
    private readonly LatencyHistogram[] _latency = CreateHistograms();

    private static LatencyHistogram[] CreateHistograms()
    {
        var h = new LatencyHistogram[(int)LatencyPath.Count];
        for (int i = 0; i < h.Length; i++)
            h[i] = new LatencyHistogram();
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long PathCalls(RuntimePath p) => ref _paths[Pad + (int)p * PerPath];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long PathPackets(RuntimePath p) => ref _paths[Pad + (int)p * PerPath + 1];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long PathSampledPackets(RuntimePath p) => ref _paths[Pad + (int)p * PerPath + 2];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long PathSampledCycles(RuntimePath p) => ref _paths[Pad + (int)p * PerPath + 3];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public LatencyHistogram Latency(LatencyPath p) => _latency[(int)p];

    /// <summary>calls, packets, sampled packets, sampled cycles of a path.</summary>
    public (long Calls, long Packets, long SampledPackets, long SampledCycles) ReadPath(RuntimePath p)
    {
        int b = Pad + (int)p * PerPath;
        return (Volatile.Read(ref _paths[b]), Volatile.Read(ref _paths[b + 1]),
            Volatile.Read(ref _paths[b + 2]), Volatile.Read(ref _paths[b + 3]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long Port(ushort port, PortCounter c) => ref _ports[Pad + port * PerPort + (int)c];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long Reason(Counters.Reason r) => ref _reasons[Pad + (int)r];

    public long ReadPort(ushort port, PortCounter c) => Volatile.Read(ref _ports[Pad + port * PerPort + (int)c]);

    public long ReadReason(Counters.Reason r) => Volatile.Read(ref _reasons[Pad + (int)r]);

    /// <summary>Zeroes the counters of one port (a port id being reused).</summary>
    public void ClearPort(ushort port) => Array.Clear(_ports, Pad + port * PerPort, PerPort);

    public void ClearReasons() => Array.Clear(_reasons);

    /// <summary>Zeroes the per-path figures. Only for the owning worker (after its warm-up calls).</summary>
    internal void ClearPaths() => Array.Clear(_paths);
}
