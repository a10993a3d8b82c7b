namespace LinuxCp.Management.Observe;

/// <summary>Memory figures the kernel reports for this process and for hugepages.</summary>
public static class ProcFs
{
    /// <summary>RSS bytes (/proc/self/status), hugepages total/free and page size (/proc/meminfo).</summary>
    public static (long Rss, long HugepagesTotal, long HugepagesFree, long HugepageSize) Memory()
    {
        long rss = Field("/proc/self/status", "VmRSS:") * 1024;
        long total = Field("/proc/meminfo", "HugePages_Total:");
        long free = Field("/proc/meminfo", "HugePages_Free:");
        long size = Field("/proc/meminfo", "Hugepagesize:") * 1024;
        return (rss, total, free, size);
    }

    private static long Field(string file, string key)
    {
        try
        {
            foreach (string line in File.ReadLines(file))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal))
                    continue;
                string[] parts = line[key.Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                return parts.Length > 0 && long.TryParse(parts[0], out long v) ? v : 0;
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }
}
