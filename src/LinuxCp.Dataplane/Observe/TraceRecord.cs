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
    public byte Pad0;
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
