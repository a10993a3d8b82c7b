using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Observe;

/// <summary>What finally happened to a traced packet.</summary>
public enum TraceOutcome : byte
{
    Pending,
    Forwarded,
    Punted,
    Dropped,
    CrossConnected,
}

/// <summary>The fast passes a traced packet went through: tracing runs the same code as
/// untraced bursts and records which of it a packet took.</summary>
[Flags]
public enum TracePasses : byte
{
    None = 0,
    /// <summary>The one-pass IPv4 check recognised a plain unicast packet to the port.</summary>
    FastIp4 = 1,
    /// <summary>The one-pass IPv6 check did.</summary>
    FastIp6 = 2,
    /// <summary>Forwarded by the single-path loop (one resolved path, fits its MTU).</summary>
    SinglePath = 4,
    /// <summary>Dropped on output (a rule, the flow table, tags, a full TX queue) after its rewrite.</summary>
    Output = 8,
}

/// <summary>One traced packet: the headers as received, each decision the worker took, and the
/// headers as sent. Fixed size, in native memory; written by one worker, read after it published
/// the record count.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct TraceRecord
{
    public const int BeforeBytes = 128;
    public const int AfterBytes = 64;

    public long Tsc;
    public uint PktLen;
    public ushort RxPort;
    public ushort TxPort;
    /// <summary><see cref="Tables.PollKind"/> of the port it came in on.</summary>
    public byte RxKind;
    public TraceOutcome Outcome;
    /// <summary>The classifier's verdict (<see cref="Counters.Reason.None"/>: not classified).</summary>
    public byte Classified;
    /// <summary>Final punt/drop reason (when punted or dropped).</summary>
    public byte FinalReason;
    /// <summary>1 when a FIB lookup was made; <see cref="NextHop"/> holds its result.</summary>
    public byte LookedUp;
    /// <summary>The fast passes the packet took (<see cref="TracePasses"/>).</summary>
    public TracePasses Passes;
    public ushort BeforeLen;
    public ushort AfterLen;
    public ushort Pad1;
    public ulong NextHop;
    public fixed byte Before[BeforeBytes];
    public fixed byte After[AfterBytes];
}

/// <summary>A worker's bounded trace store (native memory, allocated once per worker the first
/// time tracing is armed). Records [0, Published) are complete.</summary>
public sealed unsafe class TraceBuffer : IDisposable
{
    public const int DefaultCapacity = 1024;

    public TraceBuffer(int capacity = DefaultCapacity)
    {
        Capacity = capacity;
        Records = (TraceRecord*)NativeMemory.AlignedAlloc((nuint)(capacity * sizeof(TraceRecord)), 64);
    }

    public int Capacity { get; }
    internal TraceRecord* Records;

    public ref TraceRecord this[int i] => ref Records[i];

    public void Dispose()
    {
        if (Records != null)
        {
            NativeMemory.AlignedFree(Records);
            Records = null;
        }
    }
}
