using System.Text.Json.Nodes;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>Two workers: every port (af_packet with two queue pairs, TAP mirrors with two queues)
/// is polled by both, each on its own queue. Flows must spread over the workers, stay in order,
/// and the per-worker counters must add up to the port totals.</summary>
[Collection("lcpd")]
public sealed class MultiWorkerTests
{
    private const string Sender = """
        import socket, sys, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dst, flows, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        for seq in range(rounds):
            for f in range(flows):
                s.sendto(seq.to_bytes(4, 'big') + b'x' * 28, (dst, 3000 + f))
            time.sleep(0.003)
        """;

    // Counts, per UDP destination port (flow), the sequence numbers received on an interface;
    // prints: packets, flows seen, flows with a sequence number arriving after a larger one.
    private const string Receiver = """
        import socket, sys, time
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        s.bind((sys.argv[1], 0)); s.settimeout(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        last, reordered, n = {}, set(), 0
        end = time.time() + float(sys.argv[2])
        while time.time() < end:
            try: f = s.recv(2048)
            except socket.timeout: continue
            if len(f) < 46 or f[23] != 17: continue
            port = f[36] << 8 | f[37]
            if port < 3000 or port >= 4000: continue
            seq = int.from_bytes(f[42:46], 'big')
            n += 1
            if port in last and seq < last[port]: reordered.add(port)
            last[port] = max(seq, last.get(port, -1))
        print(n, len(last), len(reordered))
        """;

    [Fact]
    public async Task TwoWorkers_SpreadFlows_KeepOrder_AndCountersAddUp()
    {
        using var topo = new Topology(hosts: 2);
        var eal = LcpdProcess.TestEal($"lcpm{topo.Id}");
        // main lcore 0 (control), workers on lcores 1 and 2 (one per CPU when there are two)
        int i = eal.IndexOf("--lcores");
        int cpu1 = Environment.ProcessorCount > 1 ? 1 : 0;
        eal[i + 1] = $"0@0,1@{cpu1},2@0";
        eal.AddRange(topo.VdevArgs(queues: 2));
        using LcpdProcess lcpd = LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, "--idle-sleep-us", "50", "--queue-map", "1=1,2=0",
            "--pair", $"{topo.Hosts[0].PortName}={topo.Hosts[0].MirrorName}",
            "--pair", $"{topo.Hosts[1].PortName}={topo.Hosts[1].MirrorName}"]);
        topo.EnableRouting();
        topo.ConfigureRouterInterface(topo.Hosts[0]);
        topo.ConfigureRouterInterface(topo.Hosts[1]);
        TestHost a = topo.Hosts[0], b = topo.Hosts[1];

        JsonNode dpdk = lcpd.CtlJson("show", "dpdk");
        var workers = dpdk["lcores"]!.AsArray().Where(l => l!["worker"] is not null).ToList();
        Assert.Equal(2, workers.Count);
        // the launch line's queue map: lcore 1 polls queue 1, lcore 2 queue 0
        Assert.Equal(1, workers.Single(w => w!["lcore"]!.GetValue<int>() == 1)!["queue"]!.GetValue<int>());
        Assert.Equal(0, workers.Single(w => w!["lcore"]!.GetValue<int>() == 2)!["queue"]!.GetValue<int>());
        Assert.All(dpdk["ports"]!.AsArray(), p => Assert.Equal(2, p!["queues"]!.GetValue<int>()));

        // resolve both sides (punts and x-connects on whichever worker), then measure deltas
        Net.Ping(a.Ns, b.Ip4, count: 3);
        Net.Ping(b.Ns, a.Ip4, count: 3);
        JsonNode rt0 = lcpd.CtlJson("show", "runtime");
        long fwd0 = Forwarded(lcpd, a) + Forwarded(lcpd, b);

        // traces aggregate over workers: armed on each, shown together
        lcpd.Ctl("clear", "trace");
        JsonNode armed = lcpd.CtlJson("trace", "add", "16", "port", a.PortName);
        Assert.Equal(32, armed["pending"]!.GetValue<int>()); // 16 per worker

        const int flows = 64, rounds = 40;
        var recv = Task.Run(() => Cmd.InNs(b.Ns, "/usr/bin/python3", "-c", Receiver, b.Ifname, "4"));
        Thread.Sleep(500);
        Cmd.InNsOk(a.Ns, "/usr/bin/python3", "-c", Sender, b.Ip4, flows.ToString(), rounds.ToString());
        CmdResult r = await recv;
        Assert.True(r.Code == 0, r.ToString());
        long[] v = r.Out.Trim().Split(' ').Select(long.Parse).ToArray();
        long received = v[0];
        Assert.True(received >= flows * rounds * 95 / 100, $"received {received} of {flows * rounds}");
        Assert.Equal(flows, v[1]);
        Assert.Equal(0, v[2]); // no flow reordered

        JsonNode rt1 = lcpd.CtlJson("show", "runtime");
        long fwd1 = Forwarded(lcpd, a) + Forwarded(lcpd, b);
        var perWorkerLookups = new List<long>();
        for (int w = 0; w < 2; w++)
            perWorkerLookups.Add(PathPackets(rt1, w, "rewrite") - PathPackets(rt0, w, "rewrite"));
        // both workers carried some of the flows
        Assert.All(perWorkerLookups, n => Assert.True(n > 0, $"a worker forwarded nothing: {string.Join(",", perWorkerLookups)}"));
        // per-worker path counts add up to the port totals (forwarded = rewritten here: all resolved)
        Assert.Equal(fwd1 - fwd0, perWorkerLookups.Sum());
        Assert.True(fwd1 - fwd0 >= received);

        JsonArray trace = lcpd.CtlJson("show", "trace").AsArray();
        Assert.Equal(32, trace.Count);
        Assert.Equal([0, 1], trace.Select(p => p!["worker"]!.GetValue<int>()).Distinct().Order());
        // (host A's own IPv6 chatter may take a slot or two; the UDP flows are forwarded)
        Assert.True(trace.Count(p => p!["outcome"]!.GetValue<string>() == "forwarded") >= 28, trace.ToJsonString());
        Assert.Equal(Enumerable.Range(1, 32), trace.Select(p => p!["index"]!.GetValue<int>()));

        // errors: per-worker columns add up to the totals
        foreach (JsonNode? e in lcpd.CtlJson("show", "errors").AsArray())
            Assert.Equal(e!["count"]!.GetValue<long>(), e["per_worker"]!.AsArray().Sum(x => x!.GetValue<long>()));
        Assert.All(rt1.AsArray(), w => Assert.Equal(0, w!["allocated_bytes_since_warmup"]!.GetValue<long>()));
    }

    private static long Forwarded(LcpdProcess l, TestHost h) =>
        Net.Find(l.CtlJson("show", "interfaces"), "name", h.PortName)["forwarded"]!.GetValue<long>();

    private static long PathPackets(JsonNode runtime, int worker, string path) =>
        runtime.AsArray().Single(w => w!["worker"]!.GetValue<int>() == worker)!["paths"]!.AsArray()
            .Single(p => p!["path"]!.GetValue<string>() == path)!["packets"]!.GetValue<long>();
}
