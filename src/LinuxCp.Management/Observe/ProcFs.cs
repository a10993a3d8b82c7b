namespace LinuxCp.Management.Observe;

/// <summary>Fields of /proc/self/status and /proc/meminfo, read into a reused buffer and parsed
/// in place: <c>show memory</c> is polled by monitors, and every byte a poll allocates brings
/// the next garbage collection (which pauses the workers) closer.</summary>
public static class ProcFs
{
    [ThreadStatic]
    private static byte[]? t_buf;

    public static (long Rss, long HugepagesTotal, long HugepagesFree, long HugepageSize) Memory()
    {
        long rss = Field(Read("/proc/self/status"), "VmRSS:"u8) * 1024;
        ReadOnlySpan<byte> meminfo = Read("/proc/meminfo");
        long total = Field(meminfo, "HugePages_Total:"u8);
        long free = Field(meminfo, "HugePages_Free:"u8);
        long size = Field(meminfo, "Hugepagesize:"u8) * 1024;
        return (rss, total, free, size);
    }

    /// <summary>The file's text (up to 16 KiB, which these files stay well under); empty when
    /// it cannot be read. Valid until the thread's next call.</summary>
    private static ReadOnlySpan<byte> Read(string path)
    {
        byte[] buf = t_buf ??= new byte[16 * 1024];
        try
        {
            using var h = File.OpenHandle(path);
            int n = 0;
            while (n < buf.Length)
            {
                int r = RandomAccess.Read(h, buf.AsSpan(n), n);
                if (r <= 0)
                    break;
                n += r;
            }
            return buf.AsSpan(0, n);
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>The number after <paramref name="key"/> at the start of a line; 0 if absent.</summary>
    internal static long Field(ReadOnlySpan<byte> text, ReadOnlySpan<byte> key)
    {
        while (!text.IsEmpty)
        {
            int nl = text.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = nl < 0 ? text : text[..nl];
            text = nl < 0 ? [] : text[(nl + 1)..];
            if (!line.StartsWith(key))
                continue;
            line = line[key.Length..].TrimStart(" \t"u8);
            long v = 0;
            int i = 0;
            for (; i < line.Length && line[i] is >= (byte)'0' and <= (byte)'9' && v < long.MaxValue / 10; i++)
                v = v * 10 + (line[i] - '0');
            return i == 0 ? 0 : v;
        }
        return 0;
    }
}
