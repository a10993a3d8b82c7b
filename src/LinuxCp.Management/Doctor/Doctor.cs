using System.Globalization;
using LinuxCp.ControlPlane.Host;

namespace LinuxCp.Management.Doctor;

/// <summary>One line of the checklist. <see cref="Status"/> is ok, warn, fail or skip (does not
/// apply here); <see cref="Fix"/> says what to do when it is not ok.</summary>
public sealed record CheckDto(string Check, string Status, string Detail, string? Fix);

public sealed record DoctorDto(List<CheckDto> Checks, int Ok, int Warn, int Fail, int Skip, string Scope);

// Serialised without reflection (lcpctl is compiled ahead of time), with the protocol's snake_case names.
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(DoctorDto))]
internal sealed partial class DoctorJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>What a launch line asks of the host (lcpd --check, and lcpd itself before EAL starts).</summary>
public sealed record LaunchFacts(
    bool Hugepages,
    string? HugeDir,
    long? MemoryMiB,
    IReadOnlySet<int> WorkerCpus,
    IReadOnlyDictionary<string, string> KernelInterfaces,
    bool KeepPortIpv6,
    IReadOnlyList<string> Problems)
{
    /// <summary>--in-memory: EAL takes hugepages through memfd and needs no hugetlbfs mount.</summary>
    public bool InMemory { get; init; }
}

/// <summary>A mirror as the running daemon sees it, for the IPv6 check.</summary>
public sealed record MirrorFacts(string HostIf, string? Netns, bool Tun, IReadOnlyList<string> DadFailed, bool HasLinkLocal,
    string? PortKernelIf, bool? PortKernelIfIpv6, bool SameMac);

/// <summary>What only the running daemon knows.</summary>
public sealed record DaemonFacts(
    IReadOnlySet<int> WorkerCpus,
    IReadOnlyList<MirrorFacts>? Mirrors,
    bool PrivateMountNamespace,
    bool ServerGc,
    bool ConcurrentGc,
    string? Gen0Budget,
    int[] Collections,
    bool? TieredCompilation,
    string Version);

/// <summary>The checklist of lcpctl doctor and lcpd --check: the host (hugepages, IOMMU and
/// vfio-pci, NICs bound to DPDK drivers, isolated CPUs, the frequency governor, netlink buffer
/// limits, the multiq qdisc, FRR's nexthop mode) and, when known, the launch line or the running
/// daemon (worker CPUs, mirrors' IPv6, mount namespace, GC and JIT settings).</summary>
public static class Checklist
{
    public const string Ok = "ok", Warn = "warn", Fail = "fail", Skip = "skip";

    /// <summary>Runs every check. <paramref name="nexthopCompat"/> reads net.ipv4.nexthop_compat_mode
    /// in the network namespace of a pid (null: cannot be read).</summary>
    public static DoctorDto Run(HostFacts h, LaunchFacts? launch, DaemonFacts? daemon, string? daemonError = null,
        Func<int, string?>? nexthopCompat = null)
    {
        var c = new List<CheckDto>();
        if (launch is not null)
            foreach (string p in launch.Problems)
                c.Add(new("launch-line", Fail, p, "see lcpd --help"));
        c.Add(Hugepages(h, launch));
        c.Add(Iommu(h));
        c.Add(Vfio(h));
        c.Add(DpdkNics(h));
        c.Add(IsolatedCpus(h, daemon?.WorkerCpus ?? launch?.WorkerCpus));
        c.Add(Governor(h, daemon?.WorkerCpus ?? launch?.WorkerCpus));
        c.Add(NetlinkBuffers(h));
        c.Add(Multiq(h));
        c.Add(FrrNexthops(h, nexthopCompat ?? NexthopCompatOf));
        if (launch is not null)
            c.Add(PortInterfaces(h, launch));
        if (daemon is not null)
        {
            c.Add(new("lcpd", Ok, $"running, version {daemon.Version}", null));
            c.Add(Mirrors(daemon));
            c.Add(daemon.PrivateMountNamespace
                ? new("mount-namespace", Warn, "lcpd runs in a private mount namespace (e.g. under ip netns exec): namespaces it creates are invisible to the rest of the system",
                    "start lcpd in the host's mount namespace, or create the mirrors' namespaces (ip netns add) before it starts")
                : new("mount-namespace", Ok, "the host's mount namespace", null));
            c.Add(Gc(daemon));
            c.Add(daemon.TieredCompilation == true
                ? new("tiered-compilation", Warn, "on: the workers start in unoptimised code and are recompiled while forwarding (loop gaps in the first seconds)",
                    "unset DOTNET_TieredCompilation (lcpd ships with it off)")
                : new("tiered-compilation", Ok, "off: the workers run fully optimised code from the first packet", null));
        }
        else if (launch is null)
        {
            string why = daemonError ?? "lcpd not reachable";
            c.Add(new("lcpd", Warn, why, "start lcpd, or pass --socket <path>; the checks of the running daemon (mirrors, GC, JIT) are skipped"));
            foreach (string n in new[] { "mirror-ipv6", "mount-namespace", "gc", "tiered-compilation" })
                c.Add(new(n, Skip, "needs the running lcpd", null));
        }
        return new DoctorDto(c, c.Count(x => x.Status == Ok), c.Count(x => x.Status == Warn), c.Count(x => x.Status == Fail),
            c.Count(x => x.Status == Skip), daemon is not null ? "daemon" : launch is not null ? "launch" : "host");
    }

    /// <summary>The checklist as indented JSON (the lcpctl doctor --json contract).</summary>
    public static string Json(DoctorDto d) => System.Text.Json.JsonSerializer.Serialize(d, DoctorJsonContext.Default.DoctorDto) + "\n";

    /// <summary>A checklist read back from its JSON (lcpctl shows the daemon's).</summary>
    public static DoctorDto? Parse(System.Text.Json.Nodes.JsonNode n) => System.Text.Json.JsonSerializer.Deserialize(n, DoctorJsonContext.Default.DoctorDto);

    /// <summary>The checklist as text: one line per check, the fix under each that is not ok.</summary>
    public static string Format(DoctorDto d)
    {
        var sb = new System.Text.StringBuilder();
        int w = Math.Max(5, d.Checks.Max(x => x.Check.Length));
        sb.Append("CHECK".PadRight(w)).Append("  STATUS  DETAIL\n");
        foreach (CheckDto x in d.Checks)
        {
            sb.Append(x.Check.PadRight(w)).Append("  ").Append(x.Status.ToUpperInvariant().PadRight(6)).Append("  ").Append(x.Detail).Append('\n');
            if (x.Fix is string fix && x.Status is Warn or Fail)
                sb.Append(new string(' ', w + 10)).Append("fix: ").Append(fix).Append('\n');
        }
        sb.Append(CultureInfo.InvariantCulture, $"{d.Ok} ok, {d.Warn} warn, {d.Fail} fail, {d.Skip} skipped ({d.Scope} checks)\n");
        return sb.ToString();
    }

    private static string Mib(long bytes) => (bytes >> 20).ToString(CultureInfo.InvariantCulture);

    /// <summary>Hugepages: with a launch line that wants them, missing ones fail (EAL would).</summary>
    public static CheckDto Hugepages(HostFacts h, LaunchFacts? launch)
    {
        IReadOnlyList<string> mounts = h.HugetlbfsMounts();
        var sizes = h.Hugepages();
        long freeBytes = sizes.Sum(s => s.Free * s.SizeKiB * 1024);
        long total = sizes.Sum(s => s.Total);
        string detail = $"{(mounts.Count == 0 ? "no hugetlbfs mounted" : "hugetlbfs on " + string.Join(", ", mounts))}; "
            + (sizes.Count == 0 ? "no hugepage sizes" : string.Join(", ", sizes.Select(s => $"{s.SizeKiB / 1024} MiB pages: {s.Free} free of {s.Total}")));
        const string reserve = "reserve and mount them: echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages; mount -t hugetlbfs nodev /dev/hugepages";
        bool wanted = launch?.Hugepages ?? false;
        if (launch is not null && !launch.Hugepages)
            return new("hugepages", Ok, $"not used (--no-huge); {detail}", null);
        if (launch?.HugeDir is string dir && !mounts.Contains(dir))
            return new("hugepages", Fail, $"--huge-dir {dir} is not a hugetlbfs mount; {detail}", $"mount -t hugetlbfs nodev {dir}, or run with --no-huge -m <MiB>");
        bool noMount = mounts.Count == 0 && launch?.InMemory != true;
        if (noMount || total == 0 || freeBytes == 0)
        {
            string what = noMount ? "none mounted" : total == 0 ? "none reserved" : "none free";
            return new("hugepages", wanted ? Fail : Warn, $"{what}: {detail}", $"{reserve}; or run lcpd with --no-huge -m <MiB> (slower, for tests)");
        }
        if (wanted && launch!.MemoryMiB is long m && freeBytes < m << 20)
            return new("hugepages", Fail, $"-m {m} asks for more than the {Mib(freeBytes)} MiB of free hugepages; {detail}", $"reserve more hugepages, or lower -m");
        return new("hugepages", Ok, detail, null);
    }

    /// <summary>The hugepage check of a launch line as one refusal line (null: fine).</summary>
    public static string? HugepageRefusal(HostFacts h, LaunchFacts launch)
    {
        CheckDto c = Hugepages(h, launch);
        return c.Status == Fail ? $"hugepages: {c.Detail}: {c.Fix}" : null;
    }

    private static CheckDto Iommu(HostFacts h)
    {
        int groups = h.IommuGroups();
        if (groups > 0)
            return new("iommu", Ok, $"{groups} IOMMU group(s)", null);
        if (h.VfioNoIommu())
            return new("iommu", Warn, "no IOMMU; vfio runs in unsafe no-IOMMU mode", "enable the IOMMU in firmware and boot with intel_iommu=on iommu=pt (or amd_iommu=on)");
        return new("iommu", Warn, "no IOMMU groups: PCI NICs cannot be given to vfio-pci safely (vdevs such as net_af_packet are unaffected)",
            "enable VT-d/AMD-Vi and boot with intel_iommu=on iommu=pt, or for a VM without one: modprobe vfio enable_unsafe_noiommu_mode=1");
    }

    private static CheckDto Vfio(HostFacts h) =>
        h.DriverPresent("vfio-pci")
            ? new("vfio-pci", Ok, "vfio-pci driver loaded", null)
            : new("vfio-pci", Warn, "vfio-pci is not loaded (needed to give PCI NICs to DPDK)", "modprobe vfio-pci");

    private static CheckDto DpdkNics(HostFacts h)
    {
        var nics = h.PciNics();
        var dpdk = nics.Where(n => n.Driver is string d && Array.IndexOf(HostFacts.DpdkPciDrivers, d) >= 0).ToList();
        string list = nics.Count == 0 ? "no PCI network devices" : string.Join(", ", nics.Select(n => $"{n.Address} ({n.Driver ?? "no driver"})"));
        return dpdk.Count > 0
            ? new("dpdk-nics", Ok, $"{dpdk.Count} NIC(s) bound to a DPDK driver: {list}", null)
            : new("dpdk-nics", Warn, $"no NIC bound to a DPDK driver ({list}); only vdevs (net_af_packet, net_af_xdp, net_memif, ...) can be ports",
                "dpdk-devbind.py --bind=vfio-pci <pci address> (the NIC leaves the kernel)");
    }

    private static CheckDto IsolatedCpus(HostFacts h, IReadOnlySet<int>? workers)
    {
        IReadOnlySet<int> iso = h.IsolatedCpus();
        string isoText = iso.Count == 0 ? "none" : HostFacts.FormatCpuList(iso);
        if (workers is null || workers.Count == 0)
            return new("isolated-cpus", iso.Count == 0 ? Warn : Ok, $"isolated CPUs: {isoText}",
                iso.Count == 0 ? "for production, isolate the worker CPUs: boot with isolcpus=<cpus> nohz_full=<cpus> rcu_nocbs=<cpus>" : null);
        var missing = workers.Where(c => !iso.Contains(c)).Order().ToList();
        return missing.Count == 0
            ? new("isolated-cpus", Ok, $"worker CPU(s) {HostFacts.FormatCpuList(workers)} isolated", null)
            : new("isolated-cpus", Warn, $"worker CPU(s) {HostFacts.FormatCpuList(missing)} not isolated (isolated: {isoText}): the scheduler may run other tasks there and stall the loop",
                $"boot with isolcpus={HostFacts.FormatCpuList(workers)} nohz_full={HostFacts.FormatCpuList(workers)} rcu_nocbs={HostFacts.FormatCpuList(workers)}");
    }

    private static CheckDto Governor(HostFacts h, IReadOnlySet<int>? workers)
    {
        var g = h.Governors();
        if (g.Count == 0)
            return new("cpu-governor", Ok, "no cpufreq here (fixed frequency, or a VM)", null);
        var bad = g.Where(kv => kv.Value != "performance" && (workers is null || workers.Count == 0 || workers.Contains(kv.Key))).ToList();
        return bad.Count == 0
            ? new("cpu-governor", Ok, "performance", null)
            : new("cpu-governor", Warn, $"CPU(s) {HostFacts.FormatCpuList(bad.Select(kv => kv.Key))} use {string.Join("/", bad.Select(kv => kv.Value).Distinct())}: a polling core's clock varies with load",
                "cpupower frequency-set -g performance (or echo performance > /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)");
    }

    private static CheckDto NetlinkBuffers(HostFacts h)
    {
        long? rmem = h.ReadLong("/proc/sys/net/core/rmem_max");
        if (rmem is null)
            return new("netlink-rmem", Skip, "net.core.rmem_max cannot be read", null);
        const long Want = 8 << 20;
        return rmem >= Want
            ? new("netlink-rmem", Ok, $"net.core.rmem_max {rmem} bytes", null)
            : new("netlink-rmem", Warn, $"net.core.rmem_max is {rmem} bytes: lcpd (as root) forces its own 64 MiB netlink buffer, but routing daemons and other listeners are capped at this and lose route updates at scale",
                "sysctl -w net.core.rmem_max=134217728 (and give FRR's zebra -s / --nl-bufsize)");
    }

    private static CheckDto Multiq(HostFacts h) =>
        h.HasMultiqQdisc() switch
        {
            false => new("multiq", Warn, "the kernel has no multiq qdisc: TAP mirrors run without rte_flow support (harmless: lcpd does not use it)",
                "none needed; a kernel with CONFIG_NET_SCH_MULTIQ silences it"),
            true => new("multiq", Ok, "multiq qdisc available", null),
            null => new("multiq", Skip, "kernel config not readable", null),
        };

    private static CheckDto FrrNexthops(HostFacts h, Func<int, string?> compatOf)
    {
        var zebras = h.Processes("zebra");
        if (zebras.Count == 0)
            return new("frr-nexthop-compat", Skip, "FRR (zebra) is not running", null);
        var on = new List<int>();
        foreach (int pid in zebras)
            if (compatOf(pid) == "1")
                on.Add(pid);
        return on.Count == 0
            ? new("frr-nexthop-compat", Ok, $"zebra (pid {string.Join(",", zebras)}) with nexthop_compat_mode=0: routes name nexthop objects, which lcpd reads", null)
            : new("frr-nexthop-compat", Warn, $"zebra (pid {string.Join(",", on)}) runs where net.ipv4.nexthop_compat_mode=1: the kernel repeats every nexthop change in each route that uses it (route storms at scale)",
                "sysctl -w net.ipv4.nexthop_compat_mode=0 in zebra's namespace (as FRR recommends); lcpd follows nexthop objects");
    }

    /// <summary>net.ipv4.nexthop_compat_mode in the network namespace of a process.</summary>
    public static string? NexthopCompatOf(int pid)
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("nsenter", ["-t", pid.ToString(CultureInfo.InvariantCulture), "-n", "cat", "/proc/sys/net/ipv4/nexthop_compat_mode"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var p = System.Diagnostics.Process.Start(psi);
            if (p is null)
                return null;
            string o = p.StandardOutput.ReadToEnd().Trim();
            return p.WaitForExit(5000) && p.ExitCode == 0 ? o : null;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            return null;
        }
    }

    private static CheckDto PortInterfaces(HostFacts h, LaunchFacts launch)
    {
        if (launch.KernelInterfaces.Count == 0)
            return new("port-interfaces", Skip, "no af_packet/af_xdp/pcap ports on the launch line", null);
        var missing = launch.KernelInterfaces.Where(kv => h.Ipv6Enabled(kv.Value) is null && !h.Exists($"/sys/class/net/{kv.Value}")).ToList();
        if (missing.Count != 0)
            return new("port-interfaces", Fail, $"no interface {string.Join(", ", missing.Select(kv => $"{kv.Value} (for {kv.Key})"))} in this network namespace",
                "create it, or run lcpd in the namespace that has it (ip netns exec <ns> lcpd ...)");
        var v6 = launch.KernelInterfaces.Where(kv => h.Ipv6Enabled(kv.Value) == true).Select(kv => kv.Value).ToList();
        if (v6.Count == 0)
            return new("port-interfaces", Ok, $"{string.Join(", ", launch.KernelInterfaces.Values)}: present, IPv6 off", null);
        return launch.KeepPortIpv6
            ? new("port-interfaces", Warn, $"{string.Join(", ", v6)} keep IPv6 (--keep-port-ipv6): a TAP mirror with the same MAC shares their link-local address and its DAD may fail",
                $"drop --keep-port-ipv6, or sysctl -w net.ipv6.conf.<if>.disable_ipv6=1 for {string.Join(", ", v6)}")
            : new("port-interfaces", Ok, $"{string.Join(", ", v6)} have IPv6 on: lcpd turns it off when it pairs them (their link-local address would be the mirror's; --keep-port-ipv6 keeps it)", null);
    }

    private static CheckDto Mirrors(DaemonFacts d)
    {
        if (d.Mirrors is null)
            return new("mirror-ipv6", Skip, "lcpd runs without the FIB mirror (--no-fib)", null);
        var taps = d.Mirrors.Where(m => !m.Tun).ToList();
        if (taps.Count == 0)
            return new("mirror-ipv6", Skip, "no TAP mirrors", null);
        var failed = taps.Where(m => m.DadFailed.Count != 0).ToList();
        if (failed.Count != 0)
            return new("mirror-ipv6", Fail,
                string.Join("; ", failed.Select(m => $"{m.HostIf}{(m.Netns is null ? "" : " (netns " + m.Netns + ")")}: {string.Join(", ", m.DadFailed)} failed DAD")) + ": Linux sends no neighbour discovery from a DAD-failed address",
                string.Join("; ", failed.Select(m => m.PortKernelIfIpv6 == true && m.SameMac
                    ? $"sysctl -w net.ipv6.conf.{m.PortKernelIf}.disable_ipv6=1, then ip link set {m.HostIf} down; ip link set {m.HostIf} up"
                    : $"find the duplicate (another node with the address or the MAC), then ip link set {m.HostIf} down; ip link set {m.HostIf} up")));
        var shared = taps.Where(m => m.PortKernelIfIpv6 == true && m.SameMac).ToList();
        if (shared.Count != 0)
            return new("mirror-ipv6", Warn, $"{string.Join(", ", shared.Select(m => $"{m.HostIf} shares its MAC with {m.PortKernelIf}, which has IPv6 on"))} (--keep-port-ipv6)",
                string.Join("; ", shared.Select(m => $"sysctl -w net.ipv6.conf.{m.PortKernelIf}.disable_ipv6=1")));
        return new("mirror-ipv6", Ok, $"{taps.Count} TAP mirror(s), no DAD failure{(taps.Any(m => !m.HasLinkLocal) ? " (some without a link-local address: IPv6 off or not up)" : "")}", null);
    }

    private static CheckDto Gc(DaemonFacts d)
    {
        string detail = $"{(d.ServerGc ? "server" : "workstation")} GC, {(d.ConcurrentGc ? "concurrent" : "non-concurrent")}, gen0 budget {d.Gen0Budget ?? "runtime default"}; collections since start gen0 {d.Collections[0]}, gen1 {d.Collections[1]}, gen2 {d.Collections[2]}";
        if (d.Gen0Budget is null)
            return new("gc", Warn, detail + ": with the default gen0 budget, collections (which pause the workers) come every few MB of control-plane garbage",
                "start lcpd through bin/lcpd (it sets DOTNET_GCgen0size=0x10000000) or export DOTNET_GCgen0size yourself");
        return new("gc", Ok, detail, null);
    }

    // ---- launch lines ----------------------------------------------------------------------------

    /// <summary>What EAL options ask for: hugepages or not, memory, worker CPUs, kernel interfaces
    /// of af_packet/af_xdp/pcap vdevs.</summary>
    public static LaunchFacts FromEal(IReadOnlyList<string> eal, bool keepPortIpv6)
    {
        bool huge = true, inMemory = false;
        string? hugeDir = null;
        long? mem = null;
        string? lcores = null, list = null, mask = null;
        var kifs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        for (int i = 0; i < eal.Count; i++)
        {
            string a = eal[i];
            string? inline = null;
            int eq = a.StartsWith("--", StringComparison.Ordinal) ? a.IndexOf('=', StringComparison.Ordinal) : -1;
            if (eq > 0)
            {
                inline = a[(eq + 1)..];
                a = a[..eq];
            }
            string? Val() => inline ?? (i + 1 < eal.Count ? eal[++i] : null);
            switch (a)
            {
                case "--no-huge":
                    huge = false;
                    break;
                case "--in-memory":
                    inMemory = true;
                    break;
                case "--huge-dir":
                    hugeDir = Val();
                    break;
                case "-m":
                    if (long.TryParse(Val(), NumberStyles.None, CultureInfo.InvariantCulture, out long m))
                        mem = m;
                    break;
                case "--socket-mem":
                    mem = Val()?.Split(',').Sum(x => long.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out long v) ? v : 0);
                    break;
                case "--lcores":
                    lcores = Val();
                    break;
                case "-l":
                    list = Val();
                    break;
                case "-c":
                    mask = Val();
                    break;
                case "--vdev":
                    string? v = Val();
                    if (v is null)
                        break;
                    string[] parts = v.Split(',');
                    string name = parts[0];
                    if (name.StartsWith("net_af_packet", StringComparison.Ordinal) || name.StartsWith("net_af_xdp", StringComparison.Ordinal)
                        || name.StartsWith("net_pcap", StringComparison.Ordinal))
                        foreach (string kv in parts.Skip(1))
                            if (kv.StartsWith("iface=", StringComparison.Ordinal))
                                kifs[name] = kv[6..];
                    break;
            }
        }
        var workers = new SortedSet<int>();
        try
        {
            List<int[]> perLcore = lcores is not null ? ParseLcores(lcores)
                : list is not null ? [.. HostFacts.ParseCpuList(list).Select(c => new[] { c })]
                : mask is not null ? [.. MaskCpus(mask).Select(c => new[] { c })]
                : [.. Enumerable.Range(0, Environment.ProcessorCount).Select(c => new[] { c })];
            // The first lcore is the main one (the control plane) unless it is the only one.
            foreach (int[] cpus in perLcore.Count > 1 ? perLcore.Skip(1) : perLcore)
                foreach (int c in cpus)
                    workers.Add(c);
        }
        catch (FormatException e)
        {
            problems.Add($"lcores: {e.Message}");
        }
        return new LaunchFacts(huge, hugeDir, mem, workers, kifs, keepPortIpv6, problems) { InMemory = inMemory };
    }

    /// <summary>--lcores 0@0,1@1 / 0,1 / (0-1)@2 / 1@(2,3): the CPUs of each lcore, in order.</summary>
    public static List<int[]> ParseLcores(string spec)
    {
        var result = new List<int[]>();
        int i = 0;
        while (i < spec.Length)
        {
            string lc = Group(spec, ref i);
            int[] cpus;
            if (i < spec.Length && spec[i] == '@')
            {
                i++;
                cpus = [.. HostFacts.ParseCpuList(Group(spec, ref i))];
            }
            else
            {
                cpus = [.. HostFacts.ParseCpuList(lc)];
            }
            foreach (int _ in HostFacts.ParseCpuList(lc))
                result.Add(cpus);
            if (i < spec.Length && spec[i] == ',')
                i++;
            else if (i < spec.Length)
                throw new FormatException($"unexpected '{spec[i]}' in '{spec}'");
        }
        return result;
    }

    private static string Group(string s, ref int i)
    {
        if (i < s.Length && s[i] == '(')
        {
            int close = s.IndexOf(')', i);
            if (close < 0)
                throw new FormatException($"unbalanced '(' in '{s}'");
            string g = s[(i + 1)..close];
            i = close + 1;
            return g;
        }
        int start = i;
        while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '-'))
            i++;
        if (i == start)
            throw new FormatException($"expected a number at '{s[start..]}'");
        return s[start..i];
    }

    private static IEnumerable<int> MaskCpus(string mask)
    {
        string hex = mask.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? mask[2..] : mask;
        if (!ulong.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong bits))
            throw new FormatException($"bad core mask '{mask}'");
        for (int c = 0; c < 64; c++)
            if ((bits >> c & 1) != 0)
                yield return c;
    }
}
