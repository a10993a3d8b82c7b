using LinuxCp.ControlPlane.Host;
using LinuxCp.Management.Config;
using LinuxCp.Management.Doctor;

namespace LinuxCp.Management.Tests;

/// <summary>The checklist on synthetic /proc and /sys trees: each machine shape gives the status
/// and fix it should, and launch lines are read the way EAL reads them.</summary>
public sealed class DoctorTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("lcp-doctor-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Write(string path, string text)
    {
        string p = Path.Combine(_root, path.TrimStart('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, text);
    }

    private HostFacts Host => new(_root);

    private void Hugepages(long total, long free, bool mounted)
    {
        Write("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", total.ToString());
        Write("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", free.ToString());
        Write("/proc/mounts", mounted ? "proc /proc proc rw 0 0\nnodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n" : "proc /proc proc rw 0 0\n");
    }

    private static CheckDto Get(DoctorDto d, string name) => d.Checks.Single(c => c.Check == name);

    [Theory]
    [InlineData(512, 512, true, false, "ok")]
    [InlineData(0, 0, true, true, "fail")]
    [InlineData(512, 512, false, true, "fail")]
    [InlineData(0, 0, false, false, "warn")] // no launch line asks for them: worth saying, not failing
    [InlineData(512, 0, true, true, "fail")]
    public void Hugepages_StatusFollowsWhatTheLaunchLineNeeds(long total, long free, bool mounted, bool launch, string want)
    {
        Hugepages(total, free, mounted);
        LaunchFacts? f = launch ? Checklist.FromEal(["--no-pci", "--vdev", "net_null0"], false) : null;
        CheckDto c = Checklist.Hugepages(Host, f);
        Assert.Equal(want, c.Status);
        if (want != "ok")
            Assert.Contains("--no-huge", c.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void Hugepages_InMemoryMode_NeedsNoMount()
    {
        Hugepages(512, 512, false);
        Assert.Equal("ok", Checklist.Hugepages(Host, Checklist.FromEal(["--in-memory"], false)).Status);
        Assert.Equal("fail", Checklist.Hugepages(Host, Checklist.FromEal([], false)).Status);
    }

    [Fact]
    public void Hugepages_MoreMemoryAskedThanFree_Fails()
    {
        Hugepages(256, 256, true); // 512 MiB
        CheckDto c = Checklist.Hugepages(Host, Checklist.FromEal(["-m", "1024"], false));
        Assert.Equal("fail", c.Status);
        Assert.Contains("-m 1024", c.Detail, StringComparison.Ordinal);
        Assert.Equal("ok", Checklist.Hugepages(Host, Checklist.FromEal(["--no-huge", "-m", "1024"], false)).Status);
    }

    [Theory]
    [InlineData("--lcores", "0@0,1@1", "1")]
    [InlineData("--lcores", "0@0,1@2,2@3", "2,3")]
    [InlineData("--lcores", "(0-1)@0,2@(2,3)", "0,2,3")]
    [InlineData("-l", "0-3", "1,2,3")]
    [InlineData("-l", "2", "2")]
    [InlineData("-c", "0x6", "2")]
    public void WorkerCpus_FromEalLcoreOptions(string opt, string value, string workers)
    {
        LaunchFacts f = Checklist.FromEal([opt, value], false);
        Assert.Empty(f.Problems);
        Assert.Equal(workers, HostFacts.FormatCpuList(f.WorkerCpus));
    }

    [Fact]
    public void Lcores_Malformed_IsAProblemNotACrash()
    {
        LaunchFacts f = Checklist.FromEal(["--lcores", "0@(1"], false);
        Assert.NotEmpty(f.Problems);
        Assert.Contains(Checklist.Run(Host, f, null).Checks, c => c.Check == "launch-line" && c.Status == "fail");
    }

    [Fact]
    public void KernelInterfaces_OfAfPacketAndXdpVdevs()
    {
        LaunchFacts f = Checklist.FromEal(["--vdev", "net_af_packet0,iface=eth1,qpairs=2", "--vdev=net_af_xdp1,iface=eth2", "--vdev", "net_memif0,role=server", "--no-huge"], true);
        Assert.Equal(new Dictionary<string, string> { ["net_af_packet0"] = "eth1", ["net_af_xdp1"] = "eth2" }, f.KernelInterfaces);
        Assert.False(f.Hugepages);
        Assert.True(f.KeepPortIpv6);
    }

    [Fact]
    public void Isolation_Governor_Nics_Iommu_OnAProductionShapedHost()
    {
        Write("/sys/devices/system/cpu/isolated", "2-3");
        Write("/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor", "performance");
        Write("/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor", "powersave");
        Write("/sys/bus/pci/devices/0000:03:00.0/class", "0x020000");
        Directory.CreateDirectory(Path.Combine(_root, "sys/bus/pci/drivers/vfio-pci"));
        File.CreateSymbolicLink(Path.Combine(_root, "sys/bus/pci/devices/0000:03:00.0/driver"), "../../../bus/pci/drivers/vfio-pci");
        Directory.CreateDirectory(Path.Combine(_root, "sys/kernel/iommu_groups/7"));
        Write("/proc/sys/net/core/rmem_max", "134217728");
        DoctorDto d = Checklist.Run(Host, Checklist.FromEal(["--lcores", "0@0,1@2,2@3"], false), null);
        Assert.Equal("ok", Get(d, "isolated-cpus").Status);
        Assert.Equal("warn", Get(d, "cpu-governor").Status);
        Assert.Contains("3", Get(d, "cpu-governor").Detail, StringComparison.Ordinal);
        Assert.Equal("ok", Get(d, "dpdk-nics").Status);
        Assert.Equal("ok", Get(d, "vfio-pci").Status);
        Assert.Equal("ok", Get(d, "iommu").Status);
        Assert.Equal("ok", Get(d, "netlink-rmem").Status);

        d = Checklist.Run(Host, Checklist.FromEal(["--lcores", "0@0,1@1"], false), null);
        Assert.Equal("warn", Get(d, "isolated-cpus").Status);
        Assert.Contains("isolcpus=1", Get(d, "isolated-cpus").Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void FrrWithCompatMode_Warns_AndWithoutFrr_Skips()
    {
        Assert.Equal("skip", Get(Checklist.Run(Host, null, null), "frr-nexthop-compat").Status);
        Write("/proc/4242/comm", "zebra");
        Assert.Equal("warn", Get(Checklist.Run(Host, null, null, nexthopCompat: _ => "1"), "frr-nexthop-compat").Status);
        Assert.Equal("ok", Get(Checklist.Run(Host, null, null, nexthopCompat: _ => "0"), "frr-nexthop-compat").Status);
    }

    [Fact]
    public void Multiq_FromTheKernelConfig()
    {
        Assert.Equal("skip", Get(Checklist.Run(Host, null, null), "multiq").Status);
        Write("/proc/sys/kernel/osrelease", "6.1.0");
        Write("/boot/config-6.1.0", "CONFIG_NET_SCHED=y\n# CONFIG_NET_SCH_MULTIQ is not set\n");
        Assert.Equal("warn", Get(Checklist.Run(Host, null, null), "multiq").Status);
        Write("/boot/config-6.1.0", "CONFIG_NET_SCH_MULTIQ=m\n");
        Assert.Equal("ok", Get(Checklist.Run(Host, null, null), "multiq").Status);
    }

    [Fact]
    public void Daemon_MirrorDadFailed_FailsWithTheKernelInterfaceFix()
    {
        var daemon = new DaemonFacts(new SortedSet<int> { 1 },
            [new MirrorFacts("lcp0", "router", false, ["fe80::1"], true, "eth1", true, true),
             new MirrorFacts("lcp1", "router", false, [], true, null, null, false)],
            false, false, true, "0x10000000", [1, 0, 0], false, "1.0.0");
        DoctorDto d = Checklist.Run(Host, null, daemon);
        CheckDto m = Get(d, "mirror-ipv6");
        Assert.Equal("fail", m.Status);
        Assert.Contains("fe80::1", m.Detail, StringComparison.Ordinal);
        Assert.Contains("net.ipv6.conf.eth1.disable_ipv6=1", m.Fix, StringComparison.Ordinal);
        Assert.Equal(1, d.Fail);
        Assert.Equal("daemon", d.Scope);
        Assert.Contains("fix: sysctl -w net.ipv6.conf.eth1", Checklist.Format(d), StringComparison.Ordinal);

        d = Checklist.Run(Host, null, daemon with { Gen0Budget = null, TieredCompilation = true, Mirrors = null });
        Assert.Equal("warn", Get(d, "gc").Status);
        Assert.Equal("warn", Get(d, "tiered-compilation").Status);
        Assert.Equal("skip", Get(d, "mirror-ipv6").Status);
    }

    [Fact]
    public void Memory_ExplicitSizesThatCannotFit_FailWithTheOptions()
    {
        LaunchOptions o = LaunchOptions.Parse(["--no-huge", "-m", "256", "--", "--fib-routes", "1048576"]);
        CheckDto c = LaunchChecks.Memory(Host, Checklist.FromEal(o.EalArgs, false), o);
        Assert.Equal("fail", c.Status);
        Assert.Contains("--fib-routes 1048576", c.Detail, StringComparison.Ordinal);
        o = LaunchOptions.Parse(["--no-huge", "-m", "2048", "--", "--fib-routes", "65536"]);
        Assert.Equal("ok", LaunchChecks.Memory(Host, Checklist.FromEal(o.EalArgs, false), o).Status);
        o = LaunchOptions.Parse(["--no-huge", "-m", "512"]);
        Assert.Equal("warn", LaunchChecks.Memory(Host, Checklist.FromEal(o.EalArgs, false), o).Status); // defaults scaled down
    }

    [Fact]
    public void Check_IsTakenFromAnywhereOnTheLaunchLine()
    {
        Assert.True(LaunchOptions.Parse(["--check", "--no-huge", "--", "--pair", "0=lcp0"]).Check);
        LaunchOptions o = LaunchOptions.Parse(["--no-huge", "--", "--check", "--keep-port-ipv6"]);
        Assert.True(o.Check);
        Assert.True(o.KeepPortIpv6);
        Assert.DoesNotContain("--check", o.EalArgs);
        o = LaunchOptions.Parse(["--check", "--json", "--no-huge"]);
        Assert.True(o.CheckJson);
        Assert.Equal(["--no-huge"], o.EalArgs);
    }
}
