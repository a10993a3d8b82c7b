using System.Runtime.InteropServices;

namespace LinuxCp.Dataplane.Tables;

/// <summary>Large native arrays read at random (a million-entry hash table, a flow table): on
/// 2 MiB boundaries and, where the kernel offers transparent huge pages, backed by them, so a
/// lookup does not also miss the TLB on nearly every access. Advice only: without THP the
/// memory is ordinary pages.</summary>
public static unsafe class HugeMemory
{
    public const nuint HugePage = 2 << 20;

    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MadvHugepage = 14;

    [DllImport("libc")]
    private static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc")]
    private static extern int munmap(void* addr, nuint length);

    [DllImport("libc")]
    private static extern int madvise(void* addr, nuint length, int advice);

    /// <summary>Asks for huge pages over [p, p + bytes) (p on a 2 MiB boundary).</summary>
    public static void Advise(void* p, nuint bytes)
    {
        if (OperatingSystem.IsLinux())
            _ = madvise(p, bytes, MadvHugepage);
    }

    /// <summary>A block of at least <paramref name="bytes"/> zero bytes, on a cache-line boundary
    /// at least; <paramref name="mapped"/> is what <see cref="Free"/> needs back. Large blocks
    /// come straight from the kernel, so their pages are zeroed (and count in the RSS) only when
    /// first touched.</summary>
    public static void* AllocZeroed(nuint bytes, out nuint mapped)
    {
        if (bytes < HugePage || !OperatingSystem.IsLinux())
        {
            mapped = 0;
            void* small = NativeMemory.AlignedAlloc(bytes, 64);
            NativeMemory.Clear(small, bytes);
            return small;
        }
        nuint rounded = (bytes + HugePage - 1) & ~(HugePage - 1);
        // Over-map by one huge page, then give back the head and tail around a 2 MiB-aligned block.
        byte* raw = (byte*)mmap(null, rounded + HugePage, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (raw == (byte*)-1)
            throw new OutOfMemoryException($"mmap of {rounded + HugePage} bytes failed (errno {Marshal.GetLastSystemError()})");
        byte* p = (byte*)(((nuint)raw + HugePage - 1) & ~(HugePage - 1));
        nuint head = (nuint)(p - raw), tail = HugePage - head;
        if (head != 0)
            _ = munmap(raw, head);
        if (tail != 0)
            _ = munmap(p + rounded, tail);
        Advise(p, rounded);
        mapped = rounded;
        return p;
    }

    public static void Free(void* p, nuint mapped)
    {
        if (p == null)
            return;
        if (mapped == 0)
            NativeMemory.AlignedFree(p);
        else
            _ = munmap(p, mapped);
    }
}
