using System.Globalization;
using System.IO.Compression;

namespace LinuxCp.ControlPlane.Host;

/// <summary>What the host's /proc and /sys say, read under a root directory (the real "/" or, in
/// tests, a synthetic tree). Every read is tolerant: a missing or unreadable file is "unknown",
/// never an exception, because the checks built on it run on machines of every shape.</summary>
public sealed class HostFacts(string root = "/")
{
    public static HostFacts Real { get; } = new();

    public string Root { get; } = root;

    private string P(string path) => Root == "/" ? path : Path.Combine(Root, path.TrimStart('/'));

    public string? Read(string path)
    {
        try
        {
            return File.ReadAllText(P(path)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public long? ReadLong(string path) =>
        long.TryParse(Read(path), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null;

    public bool Exists(string path) => Directory.Exists(P(path)) || File.Exists(P(path));

    public IReadOnlyList<string> List(string dir)
    {
        try
        {
            return [.. Directory.EnumerateFileSystemEntries(P(dir)).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>The name a symbolic link points to (the last path element), e.g. a PCI device's driver.</summary>
    public string? LinkName(string path)
    {
        try
        {
            var fi = new FileInfo(P(path));
            return fi.LinkTarget is string t ? Path.GetFileName(t) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    // ---- memory ------------------------------------------------------------------------------

    public sealed record HugepageSize(long SizeKiB, long Total, long Free);

    /// <summary>Reserved and free hugepages per page size.</summary>
    public IReadOnlyList<HugepageSize> Hugepages()
    {
        var list = new List<HugepageSize>();
        foreach (string d in List("/sys/kernel/mm/hugepages"))
        {
            // hugepages-2048kB
            if (!d.StartsWith("hugepages-", StringComparison.Ordinal) || !d.EndsWith("kB", StringComparison.Ordinal))
                continue;
            if (!long.TryParse(d.AsSpan(10, d.Length - 12), NumberStyles.Integer, CultureInfo.InvariantCulture, out long kib))
                continue;
            list.Add(new HugepageSize(kib, ReadLong($"/sys/kernel/mm/hugepages/{d}/nr_hugepages") ?? 0,
                ReadLong($"/sys/kernel/mm/hugepages/{d}/free_hugepages") ?? 0));
        }
        return list;
    }

    /// <summary>Mount points of hugetlbfs (from /proc/mounts).</summary>
    public IReadOnlyList<string> HugetlbfsMounts()
    {
        string? mounts = Read("/proc/mounts");
        if (mounts is null)
            return [];
        var list = new List<string>();
        foreach (string line in mounts.Split('\n'))
        {
            string[] f = line.Split(' ');
            if (f.Length >= 3 && f[2] == "hugetlbfs")
                list.Add(f[1].Replace("\\040", " ", StringComparison.Ordinal));
        }
        return list;
    }

    // ---- CPUs --------------------------------------------------------------------------------

    /// <summary>CPUs isolated from the scheduler (isolcpus=), from a kernel CPU list like "2-5,8".</summary>
    public IReadOnlySet<int> IsolatedCpus() => ParseCpuList(Read("/sys/devices/system/cpu/isolated"));

    /// <summary>Scaling governor per CPU that has cpufreq (none in most VMs).</summary>
    public IReadOnlyDictionary<int, string> Governors()
    {
        var map = new SortedDictionary<int, string>();
        foreach (string d in List("/sys/devices/system/cpu"))
        {
            if (!d.StartsWith("cpu", StringComparison.Ordinal) || !int.TryParse(d.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out int cpu))
                continue;
            if (Read($"/sys/devices/system/cpu/{d}/cpufreq/scaling_governor") is string g && g.Length != 0)
                map[cpu] = g;
        }
        return map;
    }

    public static IReadOnlySet<int> ParseCpuList(string? list)
    {
        var set = new SortedSet<int>();
        if (string.IsNullOrWhiteSpace(list))
            return set;
        foreach (string part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int dash = part.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0)
            {
                if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int c))
                    set.Add(c);
                continue;
            }
            if (int.TryParse(part.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out int a)
                && int.TryParse(part.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int b) && b >= a && b - a < 4096)
                for (int c = a; c <= b; c++)
                    set.Add(c);
        }
        return set;
    }

    public static string FormatCpuList(IEnumerable<int> cpus) => string.Join(",", cpus.Order());

    // ---- PCI, IOMMU --------------------------------------------------------------------------

    public sealed record PciNic(string Address, string? Driver, string Vendor, string Device);

    /// <summary>PCI network controllers (class 0x02) with the driver each is bound to.</summary>
    public IReadOnlyList<PciNic> PciNics()
    {
        var list = new List<PciNic>();
        foreach (string addr in List("/sys/bus/pci/devices"))
        {
            string? cls = Read($"/sys/bus/pci/devices/{addr}/class");
            if (cls is null || !cls.StartsWith("0x02", StringComparison.Ordinal))
                continue;
            list.Add(new PciNic(addr, LinkName($"/sys/bus/pci/devices/{addr}/driver"),
                Read($"/sys/bus/pci/devices/{addr}/vendor") ?? "", Read($"/sys/bus/pci/devices/{addr}/device") ?? ""));
        }
        return list;
    }

    public static readonly string[] DpdkPciDrivers = ["vfio-pci", "uio_pci_generic", "igb_uio"];

    public int IommuGroups() => List("/sys/kernel/iommu_groups").Count;

    public bool VfioNoIommu() => Read("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode") is "Y" or "1";

    public bool DriverPresent(string driver) => Exists($"/sys/bus/pci/drivers/{driver}");

    // ---- kernel ------------------------------------------------------------------------------

    /// <summary>A kernel config option: "y", "m", "n" (not set), or null when the config cannot
    /// be read (/proc/config.gz, /boot/config-RELEASE).</summary>
    public string? KernelConfig(string option)
    {
        string? text = null;
        try
        {
            string gz = P("/proc/config.gz");
            if (File.Exists(gz))
            {
                using var f = File.OpenRead(gz);
                using var z = new GZipStream(f, CompressionMode.Decompress);
                using var r = new StreamReader(z);
                text = r.ReadToEnd();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            text = null;
        }
        text ??= Read($"/boot/config-{Read("/proc/sys/kernel/osrelease")}");
        if (text is null)
            return null;
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith(option + "=", StringComparison.Ordinal))
                return line[(option.Length + 1)..].Trim();
            if (line.StartsWith($"# {option} is not set", StringComparison.Ordinal))
                return "n";
        }
        return "n";
    }

    /// <summary>Whether the kernel can create a multiq qdisc (the TAP PMD asks for one per mirror
    /// for rte_flow, which lcpd does not use): false only when the kernel config says it was left
    /// out; null when that cannot be known.</summary>
    public bool? HasMultiqQdisc()
    {
        if (Read("/proc/modules") is string mods && mods.Contains("sch_multiq ", StringComparison.Ordinal))
            return true;
        string? c = KernelConfig("CONFIG_NET_SCH_MULTIQ");
        return c switch { null => null, "y" or "m" => true, _ => false };
    }

    /// <summary>Processes whose command name is <paramref name="comm"/>: their pids.</summary>
    public IReadOnlyList<int> Processes(string comm)
    {
        var pids = new List<int>();
        foreach (string d in List("/proc"))
            if (int.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && Read($"/proc/{pid}/comm") == comm)
                pids.Add(pid);
        return pids;
    }

    // ---- interfaces (this process's network namespace) ---------------------------------------

    /// <summary>IPv6 state of a kernel interface in our namespace: true when on, false when off,
    /// null when the interface (or IPv6) is not there.</summary>
    public bool? Ipv6Enabled(string ifname)
    {
        long? v = ReadLong($"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
        return v is null ? null : v == 0;
    }

    /// <summary>Turns IPv6 off on an interface of our namespace; returns an error or null.</summary>
    public string? DisableIpv6(string ifname)
    {
        if (ifname.Contains('/', StringComparison.Ordinal) || ifname is "." or ".." or "all" or "default")
            return $"bad interface name '{ifname}'";
        try
        {
            File.WriteAllText(P($"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"), "1");
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }
}
