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

/// <summary>One worker's counters. Only that worker writes them (plain stores); readers sum
/// across workers and tolerate a torn view of the current burst. Each port owns a 64-byte block;
/// the arrays carry a cache line of padding at both ends so two workers never share a line.</summary>
public sealed class WorkerCounters
{
    public const int PerPort = 8;
    private const int Pad = 8; // one cache line of longs

    private readonly long[] _ports = new long[Pad + EthPort.MaxPorts * PerPort + Pad];
    private readonly long[] _reasons = new long[Pad + (int)Counters.Reason.Count + Pad];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long Port(ushort port, PortCounter c) => ref _ports[Pad + port * PerPort + (int)c];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref long Reason(Counters.Reason r) => ref _reasons[Pad + (int)r];

    public long ReadPort(ushort port, PortCounter c) => Volatile.Read(ref _ports[Pad + port * PerPort + (int)c]);

    public long ReadReason(Counters.Reason r) => Volatile.Read(ref _reasons[Pad + (int)r]);

    /// <summary>Zeroes the counters of one port (a port id being reused).</summary>
    public void ClearPort(ushort port) => Array.Clear(_ports, Pad + port * PerPort, PerPort);

    public void ClearReasons() => Array.Clear(_reasons);
}
