namespace LinuxCp.TestSupport;

/// <summary>Paths of the checkout under test (the published bin/lcpd and bin/lcpctl).</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Lcpd => Path.Combine(Root, "bin", "lcpd");
    public static string Lcpctl => Path.Combine(Root, "bin", "lcpctl");

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LinuxCp.sln")))
                return d.FullName;
        throw new InvalidOperationException("LinuxCp.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Removes the EAL runtime directory a finished lcpd left for its --file-prefix.</summary>
    public static void CleanEalRuntime(IEnumerable<string> args)
    {
        var list = args.ToList();
        int i = list.IndexOf("--file-prefix");
        if (i < 0 || i + 1 >= list.Count || list[i + 1].Length == 0 || list[i + 1].Contains('/', StringComparison.Ordinal))
            return;
        string dir = Path.Combine("/var/run/dpdk", list[i + 1]);
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
    }

    private static int s_seq;

    /// <summary>A short id unique to this test run (process) and call.</summary>
    public static string UniqueId() => $"{Environment.ProcessId % 100000}x{Interlocked.Increment(ref s_seq)}";
}
