using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>One lcpd with a pair (lcp0 in the router namespace) shared by the config tests, and
/// namespaces the tests declare items in. lcpd runs under `ip netns exec`, so the namespaces are
/// made by the test (one lcpd mounted could not be seen from here).</summary>
public sealed class ConfigFixture : IDisposable
{
    public Topology Topo { get; }
    public LcpdProcess Lcpd { get; }
    public string NsA { get; }
    public string NsB { get; }

    public ConfigFixture()
    {
        Topo = new Topology(hosts: 1);
        try
        {
            NsA = $"lcpt-ca-{Topo.Id}";
            NsB = $"lcpt-cb-{Topo.Id}";
            Cmd.Ok("ip", "netns", "add", NsA);
            Cmd.Ok("ip", "netns", "add", NsB);
            var eal = LcpdProcess.TestEal($"lcpg{Topo.Id}");
            eal.AddRange(Topo.VdevArgs());
            Lcpd = LcpdProcess.Start(Topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", Topo.Rt, "--pair", $"{Topo.Hosts[0].PortName}=lcp0"]);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Lcpd?.Dispose();
        foreach (string ns in new[] { NsA, NsB })
            if (ns is not null && File.Exists($"/run/netns/{ns}"))
                Cmd.Run("ip", "netns", "del", ns);
        Topo.Dispose();
    }
}

/// <summary>The declarative config layer on real Linux: veths across namespaces, a pair's
/// mirror, ARP, routes, iptables, pending dependencies, reverted transactions, confirm, rollback,
/// drift repair, bad documents, REST. Each test removes what it declared.</summary>
[Collection("lcpd")]
public sealed class ConfigTests(ConfigFixture f) : IClassFixture<ConfigFixture>
{
    private LcpdProcess L => f.Lcpd;

    internal static CmdResult Apply(LcpdProcess l, string doc, params string[] flags)
    {
        string file = Path.Combine(Path.GetTempPath(), $"lcpt-cfg-{Repo.UniqueId()}.yaml");
        File.WriteAllText(file, doc);
        try
        {
            return l.Ctl(["config", "update", "-f", file, .. flags]);
        }
        finally
        {
            File.Delete(file);
        }
    }

    internal static void ApplyOk(LcpdProcess l, string doc, params string[] flags)
    {
        CmdResult r = Apply(l, doc, flags);
        Assert.True(r.Code == 0, $"config update failed:\n{r}\n{l.Output}");
    }

    /// <summary>Removes everything the desired state holds.</summary>
    private void Clear()
    {
        foreach (string prefix in new[] { "config/linux/", "config/lcp/" })
            L.Ctl("config", "delete", prefix);
    }

    internal static JsonNode Link(string ns, string name) => JsonNode.Parse(Cmd.InNsOk(ns, "ip", "-j", "-d", "addr", "show", "dev", name))![0]!;

    internal static List<string> Addrs(string ns, string name) =>
        [.. Link(ns, name)["addr_info"]!.AsArray().Where(a => a!["scope"]!.GetValue<string>() == "global")
            .Select(a => $"{a!["local"]}/{a["prefixlen"]}")];

    private static Dictionary<string, string> States(LcpdProcess l) =>
        l.CtlJson("config", "status").AsArray().ToDictionary(s => s!["key"]!.GetValue<string>(), s => s!["state"]!.GetValue<string>());

    private string VethPair(string a = "cv1", string b = "cv2", string addrA = "192.168.77.1/24", string extra = "") => $$$"""
        linux_config:
          interfaces:
            - name: {{{a}}}
              type: VETH
              namespace: {type: NSID, reference: {{{f.NsA}}} }
              enabled: true
              ip_addresses: [{{{addrA}}}, "2001:db8:77::1/64"]
              phys_address: "02:00:00:77:00:01"
              mtu: 1400
              veth: {peer_if_name: {{{b}}} }
            - name: {{{b}}}
              type: VETH
              namespace: {type: NSID, reference: {{{f.NsB}}} }
              enabled: true
              ip_addresses: [192.168.77.2/24]
              veth: {peer_if_name: {{{a}}} }
        {{{extra}}}
        """;

    [Fact]
    public void VethPair_Arp_Routes_Iptables_Configured_Verified_ThenDeletedCompletely()
    {
        try
        {
            ApplyOk(L, VethPair() + $$$"""
                  arp_entries:
                    - {interface: cv1, ip_address: 192.168.77.9, hw_address: "02:00:00:77:00:09"}
                  routes:
                    - {outgoing_interface: cv1, dst_network: 10.77.0.0/16, gw_addr: 192.168.77.2, metric: 50}
                    - {outgoing_interface: cv2, scope: LINK, dst_network: 10.78.0.0/16}
                  iptables_rulechains:
                    - name: guard
                      namespace: {type: NSID, reference: {{{f.NsA}}} }
                      interfaces: [cv1]
                      table: FILTER
                      chain_type: INPUT
                      default_policy: DROP
                      rules: ["-i lo -j ACCEPT", "-i cv1 -p icmp -j ACCEPT"]
                    - name: mine
                      namespace: {type: NSID, reference: {{{f.NsA}}} }
                      table: FILTER
                      chain_type: CUSTOM
                      chain_name: LCPT-MINE
                      rules: ["-p tcp --dport 22 -j REJECT"]
                """);
            JsonNode l1 = Link(f.NsA, "cv1");
            Assert.Equal("veth", l1["linkinfo"]!["info_kind"]!.GetValue<string>());
            Assert.Equal(1400, l1["mtu"]!.GetValue<int>());
            Assert.Equal("02:00:00:77:00:01", l1["address"]!.GetValue<string>());
            Assert.Contains("UP", l1["flags"]!.AsArray().Select(x => x!.GetValue<string>()));
            Assert.Equal(["192.168.77.1/24", "2001:db8:77::1/64"], Addrs(f.NsA, "cv1").Order(StringComparer.Ordinal));
            Assert.Equal(["192.168.77.2/24"], Addrs(f.NsB, "cv2"));
            // The pair really is a pair: traffic crosses it (ICMP is let in by the chain).
            Net.Ping(f.NsB, "192.168.77.1", count: 1);
            Assert.Contains("192.168.77.9 dev cv1 lladdr 02:00:00:77:00:09 PERMANENT", Cmd.InNsOk(f.NsA, "ip", "neigh", "show"), StringComparison.Ordinal);
            Assert.Contains("10.77.0.0/16 via 192.168.77.2 dev cv1 proto 200 metric 50", Cmd.InNsOk(f.NsA, "ip", "route", "show"), StringComparison.Ordinal);
            Assert.Contains("10.78.0.0/16 dev cv2 proto 200 scope link", Cmd.InNsOk(f.NsB, "ip", "route", "show"), StringComparison.Ordinal);
            string ipt = Cmd.InNsOk(f.NsA, "iptables", "-S");
            Assert.Contains("-P INPUT DROP", ipt, StringComparison.Ordinal);
            Assert.Contains("-A INPUT -i cv1 -p icmp -m comment --comment \"lcpd:guard\" -j ACCEPT", ipt, StringComparison.Ordinal);
            Assert.Contains("-A LCPT-MINE -p tcp -m tcp --dport 22 -j REJECT", ipt, StringComparison.Ordinal);
            Dictionary<string, string> st = States(L);
            Assert.All(st.Values, s => Assert.Equal("CONFIGURED", s));
            Assert.Contains("linux/interface/cv1/address/2001:db8:77::1/64", st.Keys);
            // Applying the same document again changes nothing.
            CmdResult again = Apply(L, L.CtlJson("config", "get").ToJsonString());
            Assert.Equal(0, again.Code);
            Assert.Contains("0 operation(s) made", again.Out, StringComparison.Ordinal);
            // vpp-agent's dump endpoint answers over the API socket's HTTP side.
            string dump = Cmd.Ok("curl", "-sS", "--unix-socket", L.Socket, "http://lcpd/dump/linux/v2/interfaces");
            Assert.Contains("\"name\":\"cv1\"", dump, StringComparison.Ordinal);
            Assert.Contains("\"state\":\"CONFIGURED\"", dump, StringComparison.Ordinal);
        }
        finally
        {
            Clear();
        }
        Assert.False(Net.LinkExists(f.NsA, "cv1"));
        Assert.False(Net.LinkExists(f.NsB, "cv2"));
        string after = Cmd.InNsOk(f.NsA, "iptables", "-S");
        Assert.Contains("-P INPUT ACCEPT", after, StringComparison.Ordinal);
        Assert.DoesNotContain("lcpd:", after, StringComparison.Ordinal);
        Assert.DoesNotContain("LCPT-MINE", after, StringComparison.Ordinal);
        Assert.Empty(L.CtlJson("config", "status").AsArray());
    }

    [Fact]
    public void Pending_PeerArpRouteAndNamespace_AppliedWhenTheyAppear()
    {
        string nsC = $"lcpt-cc-{f.Topo.Id}";
        try
        {
            CmdResult r = Apply(L, $$$"""
                linux_config:
                  interfaces:
                    - {name: pv1, type: VETH, namespace: {type: NSID, reference: {{{f.NsA}}} }, enabled: true, ip_addresses: [192.168.78.1/24], veth: {peer_if_name: pv2}}
                  arp_entries:
                    - {interface: pv1, ip_address: 192.168.78.9, hw_address: "02:00:00:78:00:09"}
                  routes:
                    - {outgoing_interface: pv1, dst_network: 10.79.0.0/16, gw_addr: 192.168.78.2}
                """);
            Assert.Equal(0, r.Code);
            Assert.Contains("pending", r.Out, StringComparison.Ordinal);
            var status = L.CtlJson("config", "status").AsArray();
            JsonObject pv1 = Net.Find(status, "key", "config/linux/interfaces/v2/interface/pv1");
            Assert.Equal("PENDING", pv1["state"]!.GetValue<string>());
            Assert.Contains("veth peer pv2 (not declared)", pv1["reason"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("pv1", Net.Find(status, "key", "config/linux/l3/v2/arp/pv1/192.168.78.9")["reason"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.False(Net.LinkExists(f.NsA, "pv1"));

            // The peer, in a namespace nobody has made yet: still pending, and says why.
            ApplyOk(L, $$$"""
                linux_config:
                  interfaces:
                    - {name: pv2, type: VETH, namespace: {type: NSID, reference: {{{nsC}}} }, enabled: true, ip_addresses: [192.168.78.2/24], veth: {peer_if_name: pv1}}
                """);
            JsonObject pv2 = Net.Find(L.CtlJson("config", "status"), "key", "config/linux/interfaces/v2/interface/pv2");
            Assert.Equal("PENDING", pv2["state"]!.GetValue<string>());
            Assert.Contains(nsC, pv2["reason"]!.GetValue<string>(), StringComparison.Ordinal);

            // The namespace appears (made by someone else): everything is applied by itself.
            Cmd.Ok("ip", "netns", "add", nsC);
            Net.WaitUntil(() => States(L).Values.All(s => s == "CONFIGURED"), TimeSpan.FromSeconds(10), "all items configured");
            Assert.Equal(["192.168.78.2/24"], Addrs(nsC, "pv2"));
            Assert.Contains("10.79.0.0/16 via 192.168.78.2 dev pv1", Cmd.InNsOk(f.NsA, "ip", "route", "show"), StringComparison.Ordinal);

            // The namespace goes away: its items go back to pending, and return with it.
            Cmd.Ok("ip", "netns", "del", nsC);
            Net.WaitUntil(() => States(L).GetValueOrDefault("config/linux/interfaces/v2/interface/pv2") == "PENDING", TimeSpan.FromSeconds(10), "pv2 pending again");
            Assert.Equal("PENDING", States(L)["config/linux/l3/v2/route/10.79.0.0/16/pv1"]);
            Cmd.Ok("ip", "netns", "add", nsC);
            Net.WaitUntil(() => States(L).Values.All(s => s == "CONFIGURED"), TimeSpan.FromSeconds(10), "configured again");
            Assert.True(Net.LinkExists(nsC, "pv2"));
        }
        finally
        {
            Clear();
            if (File.Exists($"/run/netns/{nsC}"))
                Cmd.Run("ip", "netns", "del", nsC);
        }
    }

    [Fact]
    public void FailingTransaction_RevertedCompletely_LinuxAsBefore()
    {
        // A link the test owns, named like one the document declares.
        Cmd.InNsOk(f.NsA, "ip", "link", "add", "zz1", "type", "veth", "peer", "name", "zzpeer");
        try
        {
            string before = Cmd.InNsOk(f.NsA, "ip", "-o", "link", "show") + Cmd.InNsOk(f.NsB, "ip", "-o", "link", "show");
            CmdResult r = Apply(L, VethPair("aa1", "aa2") + $$$"""
                    - {name: zz1, type: VETH, namespace: {type: NSID, reference: {{{f.NsA}}} }, veth: {peer_if_name: zz2}}
                    - {name: zz2, type: VETH, namespace: {type: NSID, reference: {{{f.NsB}}} }, veth: {peer_if_name: zz1}}
                """);
            Assert.NotEqual(0, r.Code);
            Assert.Contains("was not created by lcpd", r.Err, StringComparison.Ordinal);
            Assert.Contains("reverted", r.Err, StringComparison.Ordinal);
            // aa1/aa2 were created first and removed again; zz1 (not ours) is untouched.
            string after = Cmd.InNsOk(f.NsA, "ip", "-o", "link", "show") + Cmd.InNsOk(f.NsB, "ip", "-o", "link", "show");
            Assert.False(Net.LinkExists(f.NsA, "aa1"));
            Assert.True(Net.LinkExists(f.NsA, "zz1"));
            Assert.Equal(Names(before), Names(after));
            Assert.Null(L.CtlJson("config", "get")["linux_config"]);
            JsonNode last = L.CtlJson("config", "history").AsArray().Last()!;
            Assert.Equal("reverted", last["outcome"]!.GetValue<string>());
        }
        finally
        {
            Cmd.InNs(f.NsA, "ip", "link", "del", "zz1");
            Clear();
        }

        static string Names(string ipLinkOutput) => string.Join(",", ipLinkOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(':')[1].Trim()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void BadDocuments_OneClearErrorEach_NothingChanged()
    {
        (string Doc, string Expect)[] cases =
        [
            ("linux_config: {interfaces: [{name: b1, type: VETH, mtu: 70000, veth: {peer_if_name: b2}}]}", "linux_config.interfaces[0].mtu: 70000 is outside 68-65535"),
            ("linux_config: {interfaces: [{name: b1, type: EXISTING, phys_address: 'zz:00:00:00:00:01'}]}", "linux_config.interfaces[0].phys_address: not a unicast MAC"),
            ("linux_config: {interfaces: [{name: b1, type: EXISTING, ip_addresses: [10.0.0.1]}]}", "linux_config.interfaces[0].ip_addresses[0]: not an address with a prefix length"),
            ("linux_config: {interfaces: [{name: b1, type: EXISTING, colour: blue}]}", "linux_config.interfaces[0].colour: unknown field"),
            ("linux_config: {interfaces: [{name: b1, type: TUNNEL}]}", "linux_config.interfaces[0].type: unknown value \"TUNNEL\""),
            ("linux_config: {routes: [{outgoing_interface: x, dst_network: 10.1.1.1/16}]}", "linux_config.routes[0].dst_network: host bits set"),
            ("linux_config: {interfaces: [{name: b1, type: EXISTING}, {name: b1, type: EXISTING}]}", "linux_config.interfaces[1]: duplicate of linux_config.interfaces[0]"),
            ("linux_config: {interfaces: [{name: b1, type: VETH, veth: {peer_if_name: b2}}, {name: b2, type: VETH, veth: {peer_if_name: b3}}]}", "b2 names b3 as its peer"),
            ("linux_config: {interfaces: [{name: b1, type: EXISTING, ipAddresses: [10.0.0.1/8], ip_addresses: [10.0.0.2/8]}]}", "given twice"),
            ("{\"linux_config\": [", "malformed JSON"),
            ("linux_config:\n  interfaces:\n   - name: [", "malformed YAML"),
        ];
        foreach (var (doc, expect) in cases)
        {
            CmdResult r = Apply(L, doc);
            Assert.True(r.Code == 1, $"{doc}: {r}");
            Assert.Contains(expect, r.Err, StringComparison.Ordinal);
        }
        Assert.Null(L.CtlJson("config", "get")["linux_config"]);
        Assert.Empty(L.CtlJson("config", "status").AsArray());
    }

    [Fact]
    public void TapToVpp_MirrorGetsAddressesAndMtu_RevertedOnDelete_HostReachesIt()
    {
        TestHost h = f.Topo.Hosts[0];
        int mtuBefore = Link(f.Topo.Rt, "lcp0")["mtu"]!.GetValue<int>();
        try
        {
            ApplyOk(L, $"""
                linuxConfig:
                  interfaces:
                    - name: uplink
                      type: TAP_TO_VPP
                      enabled: true
                      ipAddresses: [{h.RouterIp4}/24]
                      mtu: 1400
                      tap: {"{"}vppTapIfName: lcp0{"}"}
                """);
            Assert.Equal([$"{h.RouterIp4}/24"], Addrs(f.Topo.Rt, "lcp0"));
            Assert.Equal(1400, Link(f.Topo.Rt, "lcp0")["mtu"]!.GetValue<int>());
            // The host on the port reaches the address Linux now holds on the mirror (punted).
            Net.Ping(h.Ns, h.RouterIp4, count: 2);
            // Moving a pair's mirror is refused with the reason (the pair owns its namespace).
            CmdResult move = Apply(L, $$$"""
                linuxConfig:
                  interfaces:
                    - {name: uplink, type: TAP_TO_VPP, namespace: {type: NSID, reference: {{{f.NsA}}} }, tap: {vppTapIfName: lcp0}}
                """);
            Assert.NotEqual(0, move.Code);
            Assert.Contains("not supported", move.Err, StringComparison.Ordinal);
        }
        finally
        {
            Clear();
        }
        Assert.Empty(Addrs(f.Topo.Rt, "lcp0"));
        Assert.Equal(mtuBefore, Link(f.Topo.Rt, "lcp0")["mtu"]!.GetValue<int>());
        Assert.True(Net.LinkExists(f.Topo.Rt, "lcp0"), "the mirror itself stays: it is the pair's");
    }

    [Fact]
    public void Drift_LinkDeletedBehindLcpd_Repaired_AddressChangeRepaired()
    {
        try
        {
            ApplyOk(L, VethPair("dv1", "dv2"));
            int before = Link(f.NsA, "dv1")["ifindex"]!.GetValue<int>();
            Cmd.InNsOk(f.NsA, "ip", "link", "del", "dv1");
            Net.WaitUntil(() => Net.LinkExists(f.NsA, "dv1") && Addrs(f.NsA, "dv1").Count == 2 && Net.LinkExists(f.NsB, "dv2") && Addrs(f.NsB, "dv2").Count == 1,
                TimeSpan.FromSeconds(10), "dv1/dv2 re-created with their addresses");
            Assert.NotEqual(before, Link(f.NsA, "dv1")["ifindex"]!.GetValue<int>());
            Cmd.InNsOk(f.NsB, "ip", "addr", "del", "192.168.77.2/24", "dev", "dv2");
            Net.WaitUntil(() => Addrs(f.NsB, "dv2").Contains("192.168.77.2/24"), TimeSpan.FromSeconds(10), "address put back");
            Assert.Contains(L.CtlJson("config", "history").AsArray(), t => t!["source"]!.GetValue<string>() == "repair");
            string metrics = Cmd.Ok("curl", "-sS", "--unix-socket", L.Socket, "http://lcpd/metrics");
            Assert.Matches(@"lcp_config_drift_total\{result=""repaired""\} [1-9]", metrics);
        }
        finally
        {
            Clear();
        }
    }

    [Fact]
    public void Confirm_TimeoutReverts_ConfirmKeeps_RollbackAndDiff()
    {
        try
        {
            int rev0 = RevisionNow();
            ApplyOk(L, VethPair("ct1", "ct2"), "--confirm", "2");
            Assert.True(Net.LinkExists(f.NsA, "ct1"));
            // Nothing else is taken while a commit waits for confirmation.
            CmdResult blocked = Apply(L, VethPair("ct3", "ct4"));
            Assert.Contains("waits for 'config confirm'", blocked.Err, StringComparison.Ordinal);
            Net.WaitUntil(() => !Net.LinkExists(f.NsA, "ct1"), TimeSpan.FromSeconds(10), "unconfirmed commit reverted");
            Assert.Contains(L.CtlJson("config", "history").AsArray(), t => t!["source"]!.GetValue<string>() == "confirm-timeout");

            ApplyOk(L, VethPair("ct1", "ct2"), "--confirm", "3");
            Assert.Equal(0, L.Ctl("config", "confirm").Code);
            Thread.Sleep(4000);
            Assert.True(Net.LinkExists(f.NsA, "ct1"), "confirmed commit kept");
            int rev1 = RevisionNow();

            ApplyOk(L, VethPair("ct1", "ct2", addrA: "192.168.99.1/24"));
            int rev2 = RevisionNow();
            Assert.Contains("192.168.99.1/24", Addrs(f.NsA, "ct1"));
            JsonNode diff = L.CtlJson("config", "diff", rev1.ToString(System.Globalization.CultureInfo.InvariantCulture), rev2.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal("config/linux/interfaces/v2/interface/ct1", diff["changed"]![0]!["key"]!.GetValue<string>());
            Assert.Equal(0, L.Ctl("config", "rollback", rev1.ToString(System.Globalization.CultureInfo.InvariantCulture)).Code);
            Assert.Contains("192.168.77.1/24", Addrs(f.NsA, "ct1"));
            Assert.DoesNotContain("192.168.99.1/24", Addrs(f.NsA, "ct1"));
            Assert.True(rev1 > rev0);
        }
        finally
        {
            L.Ctl("config", "confirm");
            Clear();
        }
    }

    private int RevisionNow() => L.CtlJson("config", "history").AsArray().Last()!["revision"]!.GetValue<int>();

    [Fact]
    public void Watch_StreamsStateChanges_UntilInterrupted()
    {
        var psi = new System.Diagnostics.ProcessStartInfo(Repo.Lcpctl) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { "--socket", L.Socket, "config", "watch", "--json" })
            psi.ArgumentList.Add(a);
        using var watch = System.Diagnostics.Process.Start(psi)!;
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        watch.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lines.Enqueue(e.Data);
        };
        watch.BeginOutputReadLine();
        try
        {
            Net.WaitUntil(() => lines.Any(x => x.Contains("\"watching\":true", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "watch started");
            ApplyOk(L, $"linux_config: {{interfaces: [{{name: wv1, type: VETH, namespace: {{type: NSID, reference: {f.NsA}}}, veth: {{peer_if_name: wv2}}}}]}}");
            Net.WaitUntil(() => lines.Any(x => x.Contains("interface/wv1", StringComparison.Ordinal) && x.Contains("PENDING", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(10), "PENDING streamed");
            Clear();
            Net.WaitUntil(() => lines.Any(x => x.Contains("interface/wv1", StringComparison.Ordinal) && x.Contains("REMOVED", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(10), "REMOVED streamed");
            Assert.False(watch.HasExited);
        }
        finally
        {
            watch.Kill();
            Clear();
        }
    }

    [Fact]
    public void Rest_PostDocument_PutAndDeleteItem_WithJsonBodies()
    {
        string doc = $$$"""
            {"linux_config":{"interfaces":[
            {"name":"rv1","type":"VETH","namespace":{"type":"NSID","reference":"{{{f.NsA}}}"},"enabled":true,"veth":{"peer_if_name":"rv2"}},
            {"name":"rv2","type":"VETH","namespace":{"type":"NSID","reference":"{{{f.NsB}}}"},"enabled":true,"veth":{"peer_if_name":"rv1"}}]}}
            """;
        try
        {
            string post = Cmd.Ok("curl", "-sS", "--fail-with-body", "--unix-socket", L.Socket, "-X", "POST", "--data-binary", doc, "http://lcpd/api/v1/config");
            Assert.Equal("ok", JsonNode.Parse(post)!["outcome"]!.GetValue<string>());
            Assert.True(Net.LinkExists(f.NsB, "rv2"));
            // One item by key, as etcd would hold it.
            string arp = """{"interface":"rv1","ip_address":"192.168.80.9","hw_address":"02:00:00:80:00:09"}""";
            Cmd.Ok("curl", "-sS", "--fail-with-body", "--unix-socket", L.Socket, "-X", "PUT", "--data-binary", arp,
                "http://lcpd/api/v1/config/item/config/linux/l3/v2/arp/rv1/192.168.80.9");
            Assert.Contains("192.168.80.9 dev rv1 lladdr 02:00:00:80:00:09 PERMANENT", Cmd.InNsOk(f.NsA, "ip", "neigh", "show"), StringComparison.Ordinal);
            // A value that does not belong under its key is refused, and the key is INVALID.
            CmdResult bad = Cmd.Run("curl", "-sS", "--fail-with-body", "--unix-socket", L.Socket, "-X", "PUT", "--data-binary", arp,
                "http://lcpd/api/v1/config/item/config/linux/l3/v2/arp/rv1/192.168.80.10");
            Assert.NotEqual(0, bad.Code);
            Assert.Contains("belongs under", bad.Out, StringComparison.Ordinal);
            Cmd.Ok("curl", "-sS", "--fail-with-body", "--unix-socket", L.Socket, "-X", "DELETE", "http://lcpd/api/v1/config/item/config/linux/l3/v2/arp/rv1/192.168.80.9");
            Assert.DoesNotContain("192.168.80.9", Cmd.InNsOk(f.NsA, "ip", "neigh", "show"), StringComparison.Ordinal);
        }
        finally
        {
            Clear();
        }
        Assert.False(Net.LinkExists(f.NsA, "rv1"));
    }
}

/// <summary>Config tests that need their own lcpd: restart over the persisted state, the
/// --config init file, --no-repair.</summary>
[Collection("lcpd")]
public sealed class ConfigRestartTests
{
    private static LcpdProcess Start(Topology topo, params string[] args)
    {
        var eal = LcpdProcess.TestEal($"lcpr{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        return LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, .. args]);
    }

    private static string Doc(string ns1, string ns2) => $$$"""
        linux_config:
          interfaces:
            - {name: sv1, type: VETH, namespace: {type: NSID, reference: {{{ns1}}} }, enabled: true, ip_addresses: [192.168.81.1/24], mtu: 1300, veth: {peer_if_name: sv2}}
            - {name: sv2, type: VETH, namespace: {type: NSID, reference: {{{ns2}}} }, enabled: true, ip_addresses: [192.168.81.2/24], veth: {peer_if_name: sv1}}
          routes:
            - {outgoing_interface: sv1, dst_network: 10.81.0.0/16, gw_addr: 192.168.81.2}
        """;

    [Fact]
    public void Restart_PersistedState_AppliesNothing_NoFlap_InitFileAndBadInitFile()
    {
        using var topo = new Topology(hosts: 1);
        string ns1 = $"lcpt-sa-{topo.Id}", ns2 = $"lcpt-sb-{topo.Id}";
        string dir = Path.Combine(Path.GetTempPath(), $"lcpt-state-{topo.Id}");
        string init = Path.Combine(dir, "init.yaml");
        Directory.CreateDirectory(dir);
        Cmd.Ok("ip", "netns", "add", ns1);
        Cmd.Ok("ip", "netns", "add", ns2);
        try
        {
            File.WriteAllText(init, Doc(ns1, ns2));
            int ifindex;
            using (LcpdProcess l = Start(topo, "--config-state-dir", dir, "--config", init))
            {
                Assert.Equal(1300, ConfigTests.Link(ns1, "sv1")["mtu"]!.GetValue<int>());
                Assert.Contains("10.81.0.0/16 via 192.168.81.2 dev sv1", Cmd.InNs(ns1, "ip", "route").Out, StringComparison.Ordinal);
                Assert.Equal("init", Net.Find(l.CtlJson("config", "status"), "key", "config/linux/interfaces/v2/interface/sv1")["source"]!.GetValue<string>());
                ifindex = ConfigTests.Link(ns1, "sv1")["ifindex"]!.GetValue<int>();
                Assert.True(File.Exists(Path.Combine(dir, "config-state.json")));
            }
            // Again, with the same state and init file: Linux already matches, nothing is done.
            using (LcpdProcess l = Start(topo, "--config-state-dir", dir, "--config", init))
            {
                JsonNode start = l.CtlJson("config", "history").AsArray()[0]!;
                Assert.Equal("start", start["kind"]!.GetValue<string>());
                Assert.Equal(0, start["executed"]!.GetValue<int>());
                Assert.All(l.CtlJson("config", "history").AsArray(), t => Assert.Equal(0, t!["executed"]!.GetValue<int>()));
                Assert.Equal(ifindex, ConfigTests.Link(ns1, "sv1")["ifindex"]!.GetValue<int>());
                Assert.All(l.CtlJson("config", "status").AsArray(), s => Assert.Equal("CONFIGURED", s!["state"]!.GetValue<string>()));
                // Without the init file's items the source is empty: a full resync of it removes them.
                File.WriteAllText(init, "linux_config: {}\n");
            }
            using (LcpdProcess l = Start(topo, "--config-state-dir", dir, "--config", init))
                Assert.False(Net.LinkExists(ns1, "sv1"), "the init source replaced by an empty one");
            // A broken init file stops lcpd at start with the file and the field named.
            File.WriteAllText(init, "linux_config: {interfaces: [{name: x, type: VETH, mtu: 9}]}\n");
            var eal = LcpdProcess.TestEal($"lcpr{topo.Id}");
            eal.AddRange(topo.VdevArgs());
            using LcpdProcess bad = LcpdProcess.Launch(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, "--config-state-dir", dir, "--config", init]);
            Assert.Equal(1, bad.WaitExit(TimeSpan.FromSeconds(60)));
            Assert.Contains($"--config {init}: linux_config.interfaces[0].mtu: 9 is outside 68-65535", bad.Output, StringComparison.Ordinal);
        }
        finally
        {
            Cmd.Run("ip", "netns", "del", ns1);
            Cmd.Run("ip", "netns", "del", ns2);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void GrpcOverTcp_ReadsWithReadOnlyToken_WritesNeedReadWrite()
    {
        using var topo = new Topology(hosts: 1);
        string dir = Path.Combine(Path.GetTempPath(), $"lcpt-grpc-{topo.Id}");
        Directory.CreateDirectory(dir);
        try
        {
            string tokens = Path.Combine(dir, "tokens");
            File.WriteAllText(tokens, "rw-grpc-0123456789abcdef rw ops\nro-grpc-0123456789abcdef ro dash\n");
            File.SetUnixFileMode(tokens, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            int port = 30000 + Environment.ProcessId % 20000;
            using LcpdProcess l = Start(topo, "--grpc", $"127.0.0.1:{port}", "--api-token-file", tokens);
            Cmd.InNsOk(topo.Dp, "ip", "link", "set", "lo", "up");
            // An empty request message, gRPC-framed (no compression, length 0).
            string frame = Path.Combine(dir, "empty.grpc");
            File.WriteAllBytes(frame, [0, 0, 0, 0, 0]);
            int Call(string method, string? token)
            {
                var args = new List<string> { "netns", "exec", topo.Dp, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge",
                    "-H", "content-type: application/grpc", "-H", "te: trailers", "--data-binary", $"@{frame}" };
                if (token is not null)
                    args.AddRange(["-H", $"authorization: Bearer {token}"]);
                args.Add($"http://127.0.0.1:{port}/ligato.configurator.ConfiguratorService/{method}");
                return int.Parse(Cmd.Ok("ip", [.. args]).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
            Assert.Equal(401, Call("Get", null));
            Assert.Equal(200, Call("Get", "ro-grpc-0123456789abcdef"));
            Assert.Equal(403, Call("Update", "ro-grpc-0123456789abcdef"));
            Assert.Equal(200, Call("Update", "rw-grpc-0123456789abcdef"));
            Assert.Equal(401, Call("Update", "wrong-token"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void NoRepair_DriftReportedNotRepaired()
    {
        using var topo = new Topology(hosts: 1);
        string ns1 = $"lcpt-sa-{topo.Id}", ns2 = $"lcpt-sb-{topo.Id}";
        Cmd.Ok("ip", "netns", "add", ns1);
        Cmd.Ok("ip", "netns", "add", ns2);
        try
        {
            using LcpdProcess l = Start(topo, "--no-repair");
            ConfigTests.ApplyOk(l, Doc(ns1, ns2));
            Cmd.InNsOk(ns1, "ip", "link", "set", "sv1", "mtu", "1500");
            Net.WaitUntil(() => Net.Find(l.CtlJson("config", "status"), "key", "config/linux/interfaces/v2/interface/sv1")["reason"]!.GetValue<string>().Contains("drifted", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "drift reported");
            Assert.Equal(1500, ConfigTests.Link(ns1, "sv1")["mtu"]!.GetValue<int>());
            Assert.Contains("changed in Linux behind lcpd", l.Output, StringComparison.Ordinal);
            // An explicit resync repairs it.
            Assert.Equal(0, l.Ctl("config", "resync").Code);
            Assert.Equal(1300, ConfigTests.Link(ns1, "sv1")["mtu"]!.GetValue<int>());
        }
        finally
        {
            Cmd.Run("ip", "netns", "del", ns1);
            Cmd.Run("ip", "netns", "del", ns2);
        }
    }
}
