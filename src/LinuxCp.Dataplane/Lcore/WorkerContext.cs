using System.Runtime.InteropServices;
using LinuxCp.Dataplane.Counters;

namespace LinuxCp.Dataplane.Lcore;

/// <summary>Per-worker state: queue id, burst scratch in native memory, counters and the loop's
/// health figures. Allocated once; the loop touches nothing else that is writable.</summary>
public sealed unsafe class WorkerContext : IDisposable
{
    public int Index { get; }
    public uint Lcore { get; }
    public ushort Queue { get; }
    public WorkerCounters Counters { get; } = new();

    /// <summary>rx, punt/out and drop burst arrays, BurstSize pointers each.</summary>
    internal void** RxBuf;
    internal void** OutBuf;
    internal void** DropBuf;

    // Written by the worker, read by the control plane.
    internal long Epoch;
    internal long Iterations;
    internal long MaxLoopGapTsc;
    internal long AllocatedBytes;
    internal long AllocatedBytesAtWarmup = -1;
    internal int Running;
    internal string? Failure;

    public WorkerContext(int index, uint lcore, ushort queue)
    {
        Index = index;
        Lcore = lcore;
        Queue = queue;
        int bytes = WorkerOptions.BurstSize * sizeof(void*);
        RxBuf = (void**)NativeMemory.AlignedAlloc((nuint)bytes * 3, 64);
        OutBuf = RxBuf + WorkerOptions.BurstSize;
        DropBuf = OutBuf + WorkerOptions.BurstSize;
    }

    public long EpochValue => Interlocked.Read(ref Epoch);
    public bool IsRunning => Volatile.Read(ref Running) != 0;
    public long IterationCount => Volatile.Read(ref Iterations);
    public long MaxLoopGapCycles => Volatile.Read(ref MaxLoopGapTsc);
    /// <summary>Bytes the worker thread allocated since it finished warming up (should stay 0).</summary>
    public long AllocatedSinceWarmup
    {
        get
        {
            long w = Volatile.Read(ref AllocatedBytesAtWarmup);
            return w < 0 ? 0 : Volatile.Read(ref AllocatedBytes) - w;
        }
    }
    public bool WarmedUp => Volatile.Read(ref AllocatedBytesAtWarmup) >= 0;
    public string? FailureMessage => Volatile.Read(ref Failure);

    public void ResetLoopGap() => Volatile.Write(ref MaxLoopGapTsc, 0);

    public void Dispose()
    {
        if (RxBuf != null)
        {
            NativeMemory.AlignedFree(RxBuf);
            RxBuf = OutBuf = DropBuf = null;
        }
    }
}
