using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Observe;

/// <summary>One captured packet in a <see cref="CaptureRing"/> slot.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CaptureSlot
{
    public const int SnapLen = 2048 - 16;

    public long Tsc;
    public uint OrigLen;
    public ushort CapLen;
    /// <summary>1 received, 2 sent.</summary>
    public byte Direction;
    public byte Pad;
    public fixed byte Data[SnapLen];
}

/// <summary>Single-producer (one worker) single-consumer (the capture writer) ring of packet
/// copies in native memory. The worker never waits: when the ring is full the copy is dropped
/// and counted.</summary>
public sealed unsafe class CaptureRing : IDisposable
{
    private long _head;    // written by the worker
    private long _tail;    // written by the reader
    private long _dropped; // written by the worker

    public CaptureRing(int capacity)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0)
            throw new ArgumentException("capacity must be a power of two", nameof(capacity));
        Capacity = capacity;
        Slots = (CaptureSlot*)NativeMemory.AlignedAlloc((nuint)(capacity * (long)sizeof(CaptureSlot)), 64);
    }

    public int Capacity { get; }
    internal CaptureSlot* Slots;

    public long Dropped => Volatile.Read(ref _dropped);

    /// <summary>Worker side: copies a packet's first segment (up to the snap length).</summary>
    public void Put(byte* data, uint segLen, uint pktLen, byte direction, long tsc)
    {
        long head = _head;
        if (head - Volatile.Read(ref _tail) >= Capacity)
        {
            _dropped++;
            return;
        }
        CaptureSlot* s = Slots + (head & (Capacity - 1));
        uint len = Math.Min(segLen, (uint)CaptureSlot.SnapLen);
        s->Tsc = tsc;
        s->OrigLen = pktLen;
        s->CapLen = (ushort)len;
        s->Direction = direction;
        Buffer.MemoryCopy(data, s->Data, CaptureSlot.SnapLen, len);
        Volatile.Write(ref _head, head + 1);
    }

    /// <summary>Reader side: hands each available slot to <paramref name="consume"/>, then frees
    /// them all. Returns how many were read.</summary>
    public int Drain(Action<IntPtr> consume)
    {
        long tail = _tail;
        long head = Volatile.Read(ref _head);
        for (long t = tail; t < head; t++)
            consume((IntPtr)(Slots + (t & (Capacity - 1))));
        Volatile.Write(ref _tail, head);
        return (int)(head - tail);
    }

    public void Dispose()
    {
        if (Slots != null)
        {
            NativeMemory.AlignedFree(Slots);
            Slots = null;
        }
    }
}
