using System.Text.Json.Nodes;
using LinuxCp.ControlPlane.Host;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>The start-up traps a new user meets, each provoked for real: IPv6 left on the kernel
/// interface under an af_packet port, a mirror whose address fails DAD, hugepages missing, too
/// little memory for the tables; and the doctor / --check checklists that report them.</summary>
[Collection("lcpd")]
public sealed class StartupChecksTests
{
    private static List<string> Eal(Topology t)
    {
        var eal = LcpdProcess.TestEal($"lcpt{Repo.UniqueId()}");
        eal.AddRange(t.VdevArgs());
        return eal;
    }

    private static string[] Pairs(Topology t, params string[] extra) =>
        [.. LcpdProcess.TestFib, "--netns", t.Rt, "--pair", $"{t.Hosts[0].PortName}={t.Hosts[0].MirrorName}",
         "--pair", $"{t.Hosts[1].PortName}={t.Hosts[1].MirrorName}", .. extra];

    private static string Sysctl(string ns, string key) => Cmd.InNsOk(ns, "sysctl", "-n", key).Trim();

    /// <summary>The link-local address of a mirror once DAD is over: its flags (tentative gone).</summary>
    private static string LinkLocalAfterDad(string ns, string ifname)
    {
        string line = "";
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(8);
        while (DateTime.UtcNow < deadline)
        {
            line = Cmd.InNsOk(ns, "ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link");
            if (line.Contains("fe80::", StringComparison.Ordinal) && (!line.Contains("tentative", StringComparison.Ordinal) || line.Contains("dadfailed", StringComparison.Ordinal)))
                return line;
            Thread.Sleep(200);
        }
        return line;
    }

    [Fact]
    public void Ipv6OnUnderAfPacketPorts_MirrorLinkLocalSurvivesDad_AndIpv6Forwards_10Of10()
    {
        using var t = new Topology(hosts: 2, portIpv6: true);
        TestHost a = t.Hosts[0], b = t.Hosts[1];
        t.EnableRouting();
        for (int run = 1; run <= 10; run++)
        {
            // Like a fresh veth or NIC: IPv6 on, its own DAD probes in flight as lcpd starts.
            foreach (TestHost h in t.Hosts)
                Cmd.InNsOk(t.Dp, "sysctl", "-qw", $"net.ipv6.conf.{h.DpIfname}.disable_ipv6=0");
            using var l = LcpdProcess.Start(t.Dp, Eal(t), Pairs(t));
            t.ConfigureRouterInterface(a);
            t.ConfigureRouterInterface(b);
            foreach (TestHost h in t.Hosts)
            {
                Assert.Equal("1", Sysctl(t.Dp, $"net.ipv6.conf.{h.DpIfname}.disable_ipv6"));
                string ll = LinkLocalAfterDad(t.Rt, h.MirrorName);
                Assert.True(ll.Contains("fe80::", StringComparison.Ordinal) && !ll.Contains("dadfailed", StringComparison.Ordinal) && !ll.Contains("tentative", StringComparison.Ordinal),
                    $"run {run}: {h.MirrorName}: {ll}\n{l.Output}");
            }
            Net.Ping(a.Ns, b.Ip6, count: 2, v6: true);
            Assert.Contains($"IPv6 turned off on its kernel interface {a.DpIfname}", l.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("failed duplicate address detection", l.Output, StringComparison.Ordinal);
            if (HostFacts.Real.HasMultiqQdisc() == false)
            {
                // Said once, not four lines of the TAP driver per mirror.
                Assert.Single(l.Output.Split('\n'), x => x.Contains("no multiq qdisc", StringComparison.Ordinal));
                Assert.DoesNotContain("qdisc_create_multiq", l.Output, StringComparison.Ordinal);
            }
            l.Signal(LcpdProcess.SIGTERM);
            Assert.Equal(0, l.WaitExit(TimeSpan.FromSeconds(15)));
        }
    }

    [Fact]
    public void KeepPortIpv6_LeavesItOn_AndSaysWhatMayFail()
    {
        using var t = new Topology(hosts: 2, portIpv6: true);
        using var l = LcpdProcess.Start(t.Dp, Eal(t), Pairs(t, "--keep-port-ipv6"));
        Assert.Equal("0", Sysctl(t.Dp, $"net.ipv6.conf.{t.Hosts[0].DpIfname}.disable_ipv6"));
        Assert.Contains("keeps IPv6 (--keep-port-ipv6)", l.Output, StringComparison.Ordinal);
        // With IPv6 kept, DAD on the mirror fails in about half of the runs: the check then fails
        // (and lcpctl doctor exits 1), otherwise it warns of what may fail. Never "ok".
        CmdResult r = l.Ctl("doctor", "--json");
        JsonNode d = JsonNode.Parse(r.Out)!;
        string status = Net.Find(d["checks"]!, "check", "mirror-ipv6")["status"]!.GetValue<string>();
        Assert.Contains(status, new[] { "warn", "fail" });
        Assert.Equal(d["fail"]!.GetValue<int>() > 0 ? 1 : 0, r.Code);
    }

    [Fact]
    public void DadFailureOnMirror_LoggedWithFix_AndDoctorFails()
    {
        using var t = new Topology(hosts: 2);
        TestHost a = t.Hosts[0];
        using var l = LcpdProcess.Start(t.Dp, Eal(t), Pairs(t));
        t.ConfigureRouterInterface(a);
        // The host already has this address: the mirror's DAD probe is answered, DAD fails.
        Cmd.InNsOk(t.Rt, "ip", "-6", "addr", "add", $"{a.Ip6}/64", "dev", a.MirrorName);
        Net.WaitUntil(() => l.Output.Contains("failed duplicate address detection", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "the DAD failure to be logged");
        Assert.Contains($"IPv6 address {a.Ip6} failed duplicate address detection", l.Output, StringComparison.Ordinal);
        Assert.Contains($"ip link set {a.MirrorName} down", l.Output, StringComparison.Ordinal);

        CmdResult r = l.Ctl("doctor", "--json");
        Assert.Equal(1, r.Code); // a failed check
        JsonNode d = JsonNode.Parse(r.Out)!;
        JsonObject m = Net.Find(d["checks"]!, "check", "mirror-ipv6");
        Assert.Equal("fail", m["status"]!.GetValue<string>());
        Assert.Contains(a.Ip6, m["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(m["fix"]?.GetValue<string>()));
        r = l.Ctl("doctor");
        Assert.Contains("fix:", r.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Doctor_Json_HasEveryCheck_WithStatusAndFix()
    {
        using var t = new Topology(hosts: 2);
        using var l = LcpdProcess.Start(t.Dp, Eal(t), Pairs(t));
        t.ConfigureRouterInterface(t.Hosts[0]);
        JsonNode d = l.CtlJson("doctor");
        Assert.Equal("daemon", d["scope"]!.GetValue<string>());
        var checks = d["checks"]!.AsArray().Select(c => c!.AsObject()).ToList();
        string[] names = ["hugepages", "iommu", "vfio-pci", "dpdk-nics", "isolated-cpus", "cpu-governor", "netlink-rmem", "multiq",
            "frr-nexthop-compat", "lcpd", "mirror-ipv6", "mount-namespace", "gc", "tiered-compilation"];
        foreach (string n in names)
            Assert.Contains(checks, c => c["check"]!.GetValue<string>() == n);
        foreach (JsonObject c in checks)
        {
            string st = c["status"]!.GetValue<string>();
            Assert.Contains(st, new[] { "ok", "warn", "fail", "skip" });
            Assert.False(string.IsNullOrEmpty(c["detail"]!.GetValue<string>()));
            if (st is "warn" or "fail")
                Assert.False(string.IsNullOrEmpty(c["fix"]?.GetValue<string>()), $"{c["check"]} has no fix");
        }
        Assert.Equal(checks.Count, d["ok"]!.GetValue<int>() + d["warn"]!.GetValue<int>() + d["fail"]!.GetValue<int>() + d["skip"]!.GetValue<int>());
        // What this daemon really is: the test lcpd runs under ip netns exec, through bin/lcpd.
        Assert.Equal("warn", Net.Find(d["checks"]!, "check", "mount-namespace")["status"]!.GetValue<string>());
        Assert.Equal("ok", Net.Find(d["checks"]!, "check", "gc")["status"]!.GetValue<string>());
        Assert.Equal("ok", Net.Find(d["checks"]!, "check", "tiered-compilation")["status"]!.GetValue<string>());
        Assert.Equal("ok", Net.Find(d["checks"]!, "check", "mirror-ipv6")["status"]!.GetValue<string>());
        string hp = Net.Find(d["checks"]!, "check", "hugepages")["status"]!.GetValue<string>();
        Assert.Equal(HostFacts.Real.HugetlbfsMounts().Count == 0 ? "warn" : hp, hp);

        // Without a daemon, lcpctl still checks the host and says the daemon's checks were skipped.
        CmdResult r = Cmd.Run(Repo.Lcpctl, ["--socket", $"/run/lcpt-none-{Repo.UniqueId()}.sock", "doctor", "--json"]);
        JsonNode h = JsonNode.Parse(r.Out)!;
        Assert.Equal("host", h["scope"]!.GetValue<string>());
        Assert.Equal("skip", Net.Find(h["checks"]!, "check", "gc")["status"]!.GetValue<string>());
    }

    /// <summary>lcpd in a mount namespace of its own without any hugetlbfs: what a host without
    /// hugepages looks like, whatever this machine has.</summary>
    private static CmdResult LcpdWithoutHugepages(params string[] args)
    {
        const string script = "awk '$3==\"hugetlbfs\" {print $2}' /proc/mounts | while read -r m; do umount -l \"$m\"; done; exec \"$@\"";
        return Cmd.Run("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, "sh", Repo.Lcpd, .. args], TimeSpan.FromSeconds(60));
    }

    [Fact]
    public void HugepagesMissing_RefusedBeforeEal_WithTheFix()
    {
        string prefix = $"lcpt{Repo.UniqueId()}";
        CmdResult r = LcpdWithoutHugepages("--no-pci", "--file-prefix", prefix, "--vdev", "net_null0", "--", "--api-socket", $"/run/{prefix}.sock", "--no-config-state");
        Repo.CleanEalRuntime(["--file-prefix", prefix]);
        Assert.Equal(1, r.Code);
        string[] lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("lcpd: hugepages: none mounted", lines[0], StringComparison.Ordinal);
        Assert.Contains("--no-huge -m", lines[0], StringComparison.Ordinal);
        Assert.Contains("mount -t hugetlbfs", lines[0], StringComparison.Ordinal);

        // --check says the same, as a failed line of the checklist; --no-huge passes it.
        r = LcpdWithoutHugepages("--check", "--no-pci", "--vdev", "net_null0");
        Assert.Equal(1, r.Code);
        Assert.Matches(@"(?m)^hugepages\s+FAIL\s+none mounted", r.Out);
        r = LcpdWithoutHugepages("--check", "--no-huge", "-m", "512", "--no-pci", "--vdev", "net_null0");
        Assert.Matches(@"(?m)^hugepages\s+OK", r.Out);
    }

    [Fact]
    public void TooLittleMemoryForTheTables_RefusedWithOptionAndSize_AndCheckSaysSoFirst()
    {
        string prefix = $"lcpt{Repo.UniqueId()}";
        string[] eal = ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", prefix, "--lcores", "0@0", "--vdev", "net_null0"];
        string[] lcpd = ["--", "--api-socket", $"/run/{prefix}.sock", "--no-config-state", "--fib-routes", "1048576"];
        CmdResult check = Cmd.Run(Repo.Lcpd, ["--check", .. eal, .. lcpd], TimeSpan.FromSeconds(30));
        Assert.Equal(1, check.Code);
        Assert.Matches(@"(?m)^memory\s+FAIL\s+\(estimate\) the FIB as asked \(--fib-routes 1048576", check.Out);
        CmdResult cj = Cmd.Run(Repo.Lcpd, ["--check", "--json", .. eal, .. lcpd], TimeSpan.FromSeconds(30));
        Assert.Equal(1, cj.Code);
        JsonNode j = JsonNode.Parse(cj.Out)!;
        Assert.Equal("launch", j["scope"]!.GetValue<string>());
        Assert.Equal("fail", Net.Find(j["checks"]!, "check", "memory")["status"]!.GetValue<string>());

        CmdResult r = Cmd.Run(Repo.Lcpd, [.. eal, .. lcpd], TimeSpan.FromSeconds(60));
        Repo.CleanEalRuntime(eal);
        Assert.Equal(1, r.Code);
        string last = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        Assert.StartsWith("lcpd: the FIB as asked (--fib-routes 1048576", last, StringComparison.Ordinal);
        Assert.Matches(@"needs \d+ MiB of EAL memory", last);
        Assert.Contains("-m <MiB>", last, StringComparison.Ordinal);
    }
}
