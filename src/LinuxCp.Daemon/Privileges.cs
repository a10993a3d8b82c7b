using System.Globalization;
using System.Runtime.InteropServices;

namespace LinuxCp.Daemon;

/// <summary>lcpd needs to create namespaces and interfaces and lock memory.</summary>
internal static partial class Privileges
{
    private const int CapNetAdmin = 12;
    private const int CapIpcLock = 14;
    private const int CapSysAdmin = 21;

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    /// <summary>Null if sufficient, otherwise what is missing.</summary>
    public static string? Check()
    {
        if (GetEuid() == 0)
            return null;
        ulong caps = 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                caps = ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var missing = new List<string>();
        if ((caps & (1UL << CapNetAdmin)) == 0) missing.Add("CAP_NET_ADMIN");
        if ((caps & (1UL << CapSysAdmin)) == 0) missing.Add("CAP_SYS_ADMIN");
        if ((caps & (1UL << CapIpcLock)) == 0) missing.Add("CAP_IPC_LOCK");
        return missing.Count == 0 ? null
            : $"lcpd must run as root or with {string.Join(", ", missing)} (running as uid {GetEuid()})";
    }
}
