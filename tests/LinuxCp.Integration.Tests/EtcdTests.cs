using System.Diagnostics;
using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Fleet configuration through a real etcd (Debian's etcd-server, on the loopback of the
/// dataplane's namespace): put and delete keys, states written back, a bad value INVALID, etcd
/// restarted under lcpd without disturbing what is configured.</summary>
[Collection("lcpd")]
public sealed class EtcdTests
{
    private sealed class Etcd : IDisposable
    {
        private readonly string _ns;
        private readonly string _dir;
        private Process? _p;

        public Etcd(string ns, string dir, int port)
        {
            _ns = ns;
            _dir = dir;
            Port = port;
            Start();
        }

        public int Port { get; }

        public string Url => $"http://127.0.0.1:{Port}";

        public void Start()
        {
            var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { "netns", "exec", _ns, "etcd", "--data-dir", _dir, "--listen-client-urls", Url, "--advertise-client-urls", Url,
                         "--listen-peer-urls", $"http://127.0.0.1:{Port + 1}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{Port + 1}",
                         "--initial-cluster", $"default=http://127.0.0.1:{Port + 1}" })
                psi.ArgumentList.Add(a);
            _p = Process.Start(psi)!;
            _p.OutputDataReceived += (_, _) => { };
            _p.ErrorDataReceived += (_, _) => { };
            _p.BeginOutputReadLine();
            _p.BeginErrorReadLine();
            Net.WaitUntil(() => Ctl("endpoint", "health").Code == 0, TimeSpan.FromSeconds(20), "etcd healthy");
        }

        public void Stop()
        {
            if (_p is { HasExited: false })
            {
                _p.Kill(entireProcessTree: true);
                _p.WaitForExit(10_000);
            }
            _p?.Dispose();
            _p = null;
        }

        public CmdResult Ctl(params string[] args) =>
            Cmd.Run("ip", ["netns", "exec", _ns, "etcdctl", "--endpoints", Url, "--dial-timeout", "2s", .. args], TimeSpan.FromSeconds(20),
                new Dictionary<string, string> { ["ETCDCTL_API"] = "3" });

        public string Get(string key) => Ctl("get", "--print-value-only", key).Out.Trim();

        public void Dispose()
        {
            Stop();
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void PutDelete_StatusWrittenBack_InvalidValue_EtcdRestarted_NothingDisturbed()
    {
        using var topo = new Topology(hosts: 1);
        string ns1 = $"lcpt-ea-{topo.Id}", ns2 = $"lcpt-eb-{topo.Id}";
        Cmd.Ok("ip", "netns", "add", ns1);
        Cmd.Ok("ip", "netns", "add", ns2);
        try
        {
            Cmd.InNsOk(topo.Dp, "ip", "link", "set", "lo", "up");
            int port = 20000 + (Environment.ProcessId * 7 + Environment.TickCount) % 20000;
            using var etcd = new Etcd(topo.Dp, Path.Combine(Path.GetTempPath(), $"lcpt-etcd-{topo.Id}"), port);
            string root = $"/lcp/t{topo.Id}/";
            string If(string n) => $"{root}config/linux/interfaces/v2/interface/{n}";
            // One value before lcpd starts: read at start.
            etcd.Ctl("put", If("ev1"), $$$"""{"name":"ev1","type":"VETH","namespace":{"type":"NSID","reference":"{{{ns1}}}"},"enabled":true,"ip_addresses":["10.66.0.1/24"],"veth":{"peer_if_name":"ev2"}}""");
            var eal = LcpdProcess.TestEal($"lcpe{topo.Id}");
            eal.AddRange(topo.VdevArgs());
            using LcpdProcess l = LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, "--etcd", etcd.Url, "--agent-label", $"t{topo.Id}"]);
            Net.WaitUntil(() => etcd.Get($"{root}status/config/linux/interfaces/v2/interface/ev1").Contains("PENDING", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "ev1 pending in etcd's status");
            Assert.Contains("veth peer ev2", etcd.Get($"{root}status/config/linux/interfaces/v2/interface/ev1"), StringComparison.Ordinal);

            etcd.Ctl("put", If("ev2"), $$$"""{"name":"ev2","type":"VETH","namespace":{"type":"NSID","reference":"{{{ns2}}}"},"enabled":true,"veth":{"peer_if_name":"ev1"}}""");
            Net.WaitUntil(() => Net.LinkExists(ns1, "ev1") && etcd.Get($"{root}status/config/linux/interfaces/v2/interface/ev1").Contains("CONFIGURED", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "ev1 configured");
            Assert.Equal(["10.66.0.1/24"], ConfigTests.Addrs(ns1, "ev1"));
            Assert.Equal("etcd", Net.Find(l.CtlJson("config", "status"), "key", "config/linux/interfaces/v2/interface/ev2")["source"]!.GetValue<string>());

            // A value that does not parse: INVALID, nothing else changes.
            etcd.Ctl("put", $"{root}config/linux/l3/v2/arp/ev1/10.66.0.9", "{\"interface\":\"ev1\",\"ip_address\":\"10.66.0.9\",\"hw_address\":\"nope\"}");
            Net.WaitUntil(() => etcd.Get($"{root}status/config/linux/l3/v2/arp/ev1/10.66.0.9").Contains("INVALID", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "bad value invalid");
            Assert.Contains("hw_address", etcd.Get($"{root}status/config/linux/l3/v2/arp/ev1/10.66.0.9"), StringComparison.Ordinal);

            // etcd goes away and comes back: lcpd reads everything again; nothing it configured flaps.
            int ifindex = ConfigTests.Link(ns1, "ev1")["ifindex"]!.GetValue<int>();
            int txns = l.CtlJson("config", "history").AsArray().Count;
            etcd.Stop();
            Thread.Sleep(1500);
            etcd.Start();
            Net.WaitUntil(() => l.Output.Split('\n').Count(x => x.Contains("read at revision", StringComparison.Ordinal)) >= 2,
                TimeSpan.FromSeconds(20), "resync after the etcd restart");
            Assert.Equal(ifindex, ConfigTests.Link(ns1, "ev1")["ifindex"]!.GetValue<int>());
            Assert.All(l.CtlJson("config", "history").AsArray().Skip(txns), t => Assert.Equal(0, t!["executed"]!.GetValue<int>()));

            // A delete after the restart is seen: ev2 goes, ev1 waits for it again (and is removed from Linux).
            etcd.Ctl("del", If("ev2"));
            Net.WaitUntil(() => !Net.LinkExists(ns1, "ev1") && etcd.Get($"{root}status/config/linux/interfaces/v2/interface/ev1").Contains("PENDING", StringComparison.Ordinal),
                TimeSpan.FromSeconds(10), "ev1 pending after its peer's key was deleted");
            Assert.Equal("", etcd.Get($"{root}status/config/linux/interfaces/v2/interface/ev2"));
            string metrics = Cmd.Ok("curl", "-sS", "--unix-socket", l.Socket, "http://lcpd/metrics");
            Assert.Contains("lcp_config_etcd_connected 1", metrics, StringComparison.Ordinal);
            Assert.Matches(@"lcp_config_etcd_resyncs_total [2-9]", metrics);
        }
        finally
        {
            Cmd.Run("ip", "netns", "del", ns1);
            Cmd.Run("ip", "netns", "del", ns2);
        }
    }
}
