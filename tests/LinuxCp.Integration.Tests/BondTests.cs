using System.Globalization;
using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>An 802.3ad bond over two veth pairs with a real LACP partner: a second lcpd with
/// DPDK's bonding PMD in mode 4 (testpmd cannot be that partner with af_packet members: its
/// forwarding loops make TX bursts only when they forward something, so its bond's LACPDUs never
/// leave). The bond comes up (both members distributing on both sides), traffic is routed across
/// it, a member's link goes down and traffic continues on the other, the member comes back.</summary>
public sealed class BondTests
{
    private static JsonArray Members(LcpdProcess l, string bond) =>
        Net.Find(l.CtlJson("show", "bond"), "name", bond)["members"]!.AsArray();

    private static bool AllDistributing(LcpdProcess l, string bond) =>
        Members(l, bond).All(m => m!["active"]!.GetValue<bool>()
            && m["actor_state"]?.AsArray().Any(s => s!.GetValue<string>() == "distributing") == true
            && m["partner_state"]?.AsArray().Any(s => s!.GetValue<string>() == "distributing") == true);

    [Fact]
    public void LacpBond_ComesUp_CarriesRoutedTraffic_MemberDown_TrafficContinues_MemberBack()
    {
        using var topo = new Topology(hosts: 1);
        TestHost a = topo.Hosts[0];
        string pdp = topo.AddNamespace("pdp"), prt = topo.AddNamespace("prt");
        for (int i = 0; i < 2; i++)
        {
            Cmd.Ok("ip", "link", "add", $"bm{i}", "netns", topo.Dp, "type", "veth", "peer", "name", $"pm{i}", "netns", pdp);
            foreach (var (ns, ifn) in new[] { (topo.Dp, $"bm{i}"), (pdp, $"pm{i}") })
            {
                Cmd.InNsOk(ns, "sysctl", "-qw", $"net.ipv6.conf.{ifn}.disable_ipv6=1");
                Cmd.InNsOk(ns, "ip", "link", "set", ifn, "up");
            }
        }
        // The partner: lcpd with its own 802.3ad bond, Linux behind it answering on 10.60.0.2.
        var peal = LcpdProcess.TestEal($"lcpbp{topo.Id}");
        peal[peal.IndexOf("--lcores") + 1] = "0@0";
        peal.AddRange(["--vdev", "net_af_packet0,iface=pm0", "--vdev", "net_af_packet1,iface=pm1"]);
        using LcpdProcess partner = LcpdProcess.Start(pdp, peal, [.. LcpdProcess.TestFib, "--netns", prt,
            "--bond", "pbond=net_af_packet0,net_af_packet1,mode=lacp", "--pair", "pbond=lcpp"]);
        Cmd.InNsOk(prt, "ip", "addr", "add", "10.60.0.2/24", "dev", "lcpp");
        Cmd.InNsOk(prt, "ip", "link", "set", "lcpp", "up");
        Cmd.InNsOk(prt, "ip", "route", "add", "default", "via", "10.60.0.1");

        var eal = LcpdProcess.TestEal($"lcpb{topo.Id}");
        eal.AddRange(["--vdev", $"{a.PortName},iface={a.DpIfname}", "--vdev", "net_af_packet1,iface=bm0", "--vdev", "net_af_packet2,iface=bm1"]);
        using LcpdProcess l = LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt,
            "--bond", "bond0=net_af_packet1,net_af_packet2,mode=lacp,hash=l34", "--pair", $"{a.PortName}={a.MirrorName}", "--pair", "bond0=lcpb"]);
        topo.EnableRouting();
        topo.ConfigureRouterInterface(a);
        Cmd.InNsOk(topo.Rt, "ip", "addr", "add", "10.60.0.1/24", "dev", "lcpb");
        Cmd.InNsOk(topo.Rt, "ip", "link", "set", "lcpb", "up");

        // The bond is a port (named as given), its members are not.
        JsonArray ifs = l.CtlJson("show", "interfaces").AsArray();
        Assert.Contains(ifs, i => i!["name"]!.GetValue<string>() == "bond0");
        Assert.DoesNotContain(ifs, i => i!["name"]!.GetValue<string>() == "net_af_packet1");
        JsonObject bond = Net.Find(l.CtlJson("show", "bond"), "name", "bond0");
        Assert.Equal("lacp", bond["mode"]!.GetValue<string>());
        Assert.Equal("l34", bond["hash"]!.GetValue<string>());
        Net.WaitUntil(() => AllDistributing(l, "bond0") && AllDistributing(partner, "pbond"), TimeSpan.FromSeconds(30),
            $"LACP: both members distributing on both sides ({l.CtlJson("show", "bond").ToJsonString()})");
        string partnerSystem = Members(l, "bond0")[0]!["partner_system"]!.GetValue<string>();
        Assert.Equal(Net.Find(partner.CtlJson("show", "bond"), "name", "pbond")["mac"]!.GetValue<string>(), partnerSystem);

        // Routed across the bond by the dataplane (host A -> the partner's Linux, and back).
        Net.Ping(a.Ns, "10.60.0.2");
        long linux = Net.LinuxForwarded(topo.Rt, false);
        Net.Ping(a.Ns, "10.60.0.2", count: 10);
        Assert.Equal(linux, Net.LinuxForwarded(topo.Rt, false));

        // The member that carries this flow (one flow hashes to one member) loses its link while
        // 100 pings a second cross the bond: they move to the other member.
        long Tx(int i) => Members(l, "bond0")[i]!["tx_packets"]!.GetValue<long>();
        long t0 = Tx(0), t1 = Tx(1);
        Net.Ping(a.Ns, "10.60.0.2", count: 20);
        int carrying = Tx(0) - t0 >= Tx(1) - t1 ? 0 : 1;
        using var pinger = new Background(a.Ns, "ping", "-i", "0.01", "-c", "800", "-W", "1", "10.60.0.2");
        Thread.Sleep(2000);
        Cmd.InNsOk(topo.Dp, "ip", "link", "set", $"bm{carrying}", "down");
        Assert.True(pinger.Wait(TimeSpan.FromSeconds(30)), "the pinger did not finish");
        string summary = pinger.Output.Split('\n').First(x => x.Contains("packets transmitted", StringComparison.Ordinal));
        int sent = int.Parse(summary.Split(' ')[0], CultureInfo.InvariantCulture);
        int received = int.Parse(summary.Split(", ")[1].Split(' ')[0], CultureInfo.InvariantCulture);
        int lost = sent - received;
        Assert.True(lost <= 50, $"failover lost {lost} of {sent} pings at 10 ms intervals (more than 0.5 s): {summary}");
        JsonArray down = Members(l, "bond0");
        Assert.False(down[carrying]!["in_bond"]!.GetValue<bool>());
        Assert.Equal(1, down[carrying]!["removals"]!.GetValue<long>());
        Assert.True(down[1 - carrying]!["active"]!.GetValue<bool>());
        Assert.True(Net.Find(l.CtlJson("show", "interfaces"), "name", "bond0")["link_up"]!.GetValue<bool>());
        Net.Ping(a.Ns, "10.60.0.2", count: 5);
        Console.WriteLine($"bond failover: {lost} of {sent} pings lost at 10 ms intervals (<= {lost * 10} ms)");

        // Back up: re-opened, added, and LACP brings it into the distribution again.
        Cmd.InNsOk(topo.Dp, "ip", "link", "set", $"bm{carrying}", "up");
        Net.WaitUntil(() => AllDistributing(l, "bond0") && AllDistributing(partner, "pbond"), TimeSpan.FromSeconds(30),
            $"the member back in the distribution ({l.CtlJson("show", "bond").ToJsonString()})");
        Net.Ping(a.Ns, "10.60.0.2", count: 5);

        // Both members down: the bond's link goes, and with lcp-sync its mirror's carrier.
        Cmd.InNsOk(topo.Dp, "ip", "link", "set", "bm0", "down");
        Cmd.InNsOk(topo.Dp, "ip", "link", "set", "bm1", "down");
        Net.WaitUntil(() => Net.Find(l.CtlJson("show", "lcp"), "host_if", "lcpb")["mirror_carrier"]?.GetValue<bool>() == false,
            TimeSpan.FromSeconds(5), "the bond's mirror loses its carrier with its last member");
        Assert.Contains("NO-CARRIER", Cmd.InNsOk(topo.Rt, "ip", "link", "show", "lcpb"), StringComparison.Ordinal);
    }
}
