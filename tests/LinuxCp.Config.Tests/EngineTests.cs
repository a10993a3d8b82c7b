using System.Text.Json.Nodes;
using LinuxCp.Config.Engine;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;
using LinuxCp.ControlPlane.Netlink;
using Microsoft.Extensions.Logging.Abstractions;

namespace LinuxCp.Config.Tests;

public sealed class EngineTests : IDisposable
{
    private readonly FakeLinux _linux = new();
    private readonly FakePairs _pairs;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"lcpcfg-{Guid.NewGuid():N}");
    private readonly ConfigEngine _e;

    public EngineTests()
    {
        _pairs = new FakePairs(_linux);
        _e = New();
    }

    private ConfigEngine New() => new(_linux, _pairs, new EngineOptions { StateDirectory = _dir }, NullLogger.Instance);

    public void Dispose()
    {
        _e.Dispose();
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, true);
    }

    private static ConfigDocument Doc(string yaml) => DocumentReader.Parse(yaml).Doc;

    private TxnResult Update(string yaml, TxnOptions? o = null) => _e.Update("test", Doc(yaml), o ?? new TxnOptions());

    private const string Pair = """
        linux_config:
          interfaces:
            - {name: v1, type: VETH, namespace: {type: NSID, reference: a}, enabled: true, ip_addresses: [10.1.0.1/24], mtu: 9000, veth: {peer_if_name: v2}}
            - {name: v2, type: VETH, namespace: {type: NSID, reference: b}, enabled: true, ip_addresses: [10.1.0.2/24], veth: {peer_if_name: v1}}
          routes:
            - {outgoing_interface: v1, dst_network: 10.9.0.0/16, gw_addr: 10.1.0.2}
          arp_entries:
            - {interface: v2, ip_address: 10.1.0.9, hw_address: "02:00:00:00:00:09"}
        """;

    private ItemState State(string key) => _e.Status().Single(s => s.Key == key).State;

    [Fact]
    public void VethPair_CreatedTogether_InDependencyOrder_Verified()
    {
        TxnResult r = Update(Pair);
        Assert.True(r.Ok, r.Error);
        FakeLinux.Link v1 = _linux.Links_["/run/netns/a"].Single(l => l.Name == "v1");
        FakeLinux.Link v2 = _linux.Links_["/run/netns/b"].Single(l => l.Name == "v2");
        Assert.Equal((v2.Index, "/run/netns/b"), (v1.PeerIndex, v1.PeerNs));
        Assert.Equal(9000u, v1.Mtu);
        Assert.True(v1.Up && v2.Up);
        Assert.Equal(["10.1.0.1/24"], v1.Addrs);
        // One veth creation for both ends; the link before its address, the address before the route through it.
        Assert.Single(_linux.Ops, o => o.StartsWith("create veth", StringComparison.Ordinal));
        int link = _linux.Ops.FindIndex(o => o.StartsWith("create veth", StringComparison.Ordinal));
        int addr = _linux.Ops.IndexOf("add address 10.1.0.1/24 to v1@/run/netns/a");
        int route = _linux.Ops.IndexOf("add route 10.9.0.0/16@/run/netns/a");
        Assert.True(link < addr && addr < route, string.Join("\n", _linux.Ops));
        Assert.All(_e.Status(), s => Assert.Equal(ItemState.Configured, s.State));
        // Again: nothing to do.
        int ops = _linux.Ops.Count;
        Assert.True(Update(Pair).Ok);
        Assert.Equal(ops, _linux.Ops.Count);
    }

    [Fact]
    public void MissingPeerAndInterface_Pending_WithTheReason_ThenApplied()
    {
        Update("""
            linux_config:
              interfaces: [{name: v1, type: VETH, namespace: {type: NSID, reference: a}, veth: {peer_if_name: v2}}]
              arp_entries: [{interface: v1, ip_address: 10.1.0.9, hw_address: "02:00:00:00:00:09"}]
            """);
        ItemStatus s = _e.Status().Single(x => x.Key == Keys.Interface("v1"));
        Assert.Equal(ItemState.Pending, s.State);
        Assert.Contains("veth peer v2 (not declared)", s.Reason, StringComparison.Ordinal);
        Assert.Contains("interface v1", _e.Status().Single(x => x.Key == Keys.Arp("v1", "10.1.0.9")).Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(_linux.Ops, o => o.StartsWith("create veth", StringComparison.Ordinal));
        Update("linux_config: {interfaces: [{name: v2, type: VETH, namespace: {type: NSID, reference: b}, veth: {peer_if_name: v1}}]}");
        Assert.All(_e.Status(), x => Assert.Equal(ItemState.Configured, x.State));
        // The peer goes away: v1 and the ARP entry go back to pending (and v1 is gone from Linux).
        Assert.True(_e.Delete("test", [Keys.Interface("v2")], new TxnOptions()).Ok);
        Assert.Equal(ItemState.Pending, State(Keys.Interface("v1")));
        Assert.Equal(ItemState.Pending, State(Keys.Arp("v1", "10.1.0.9")));
        Assert.DoesNotContain(_linux.Links_["/run/netns/a"], l => l.Name == "v1");
    }

    [Fact]
    public void NamespaceNotThere_Pending_AppliedByTickWhenItAppears()
    {
        _linux.AutoCreate = false;
        Update(Pair);
        Assert.Equal(ItemState.Pending, State(Keys.Interface("v1")));
        Assert.Contains("no namespace /run/netns/a", _e.Status().Single(x => x.Key == Keys.Interface("v1")).Reason, StringComparison.Ordinal);
        _linux.AddNamespace("a");
        _linux.AddNamespace("b");
        _e.Tick();
        Assert.All(_e.Status(), x => Assert.Equal(ItemState.Configured, x.State));
        _linux.DeleteNamespace("b");
        _e.Tick();
        Assert.Equal(ItemState.Pending, State(Keys.Interface("v2")));
        Assert.Equal(ItemState.Pending, State(Keys.Arp("v2", "10.1.0.9")));
    }

    [Fact]
    public void FailureMidway_EverythingReverted_LinuxExactlyAsBefore()
    {
        Update("linux_config: {interfaces: [{name: lo1, type: LOOPBACK, namespace: {type: NSID, reference: a}, enabled: true, ip_addresses: [127.0.0.2/8]}]}");
        string before = _linux.Snapshot();
        _linux.FailOn = op => op.StartsWith("set neighbour", StringComparison.Ordinal) ? 22 : 0;
        TxnResult r = Update(Pair);
        Assert.False(r.Ok);
        Assert.Equal("reverted", r.Outcome);
        Assert.Contains("injected failure", r.Error, StringComparison.Ordinal);
        Assert.Equal(before, _linux.Snapshot());
        Assert.Null(_e.Status().FirstOrDefault(s => s.Key == Keys.Interface("v1")));
        Assert.Single(_e.Get().Interfaces);
        // Verification failing after apply reverts too (the kernel acknowledged, but kept its MTU).
        _linux.FailOn = null;
        _linux.IgnoreMtu = true;
        string mtuDoc = Pair.Replace("mtu: 9000", "mtu: 1280", StringComparison.Ordinal);
        TxnResult v = Update(mtuDoc);
        Assert.Equal("reverted", v.Outcome);
        Assert.Contains("verify config/linux/interfaces/v2/interface/v1: v1: mtu 1500, declared 1280", v.Error, StringComparison.Ordinal);
        Assert.Equal(before, _linux.Snapshot());
    }

    [Fact]
    public void BestEffort_KeepsTheRest_RetriesRetriable()
    {
        int fails = 1;
        _linux.FailOn = op => op.StartsWith("add route", StringComparison.Ordinal) && fails-- > 0 ? 16 : 0; // EBUSY once
        TxnResult r = Update(Pair, new TxnOptions { BestEffort = true });
        Assert.False(r.Ok);
        Assert.Equal("partial", r.Outcome);
        Assert.Equal(ItemState.Retrying, State(Keys.Route("10.9.0.0/16", "v1")));
        Assert.Equal(ItemState.Configured, State(Keys.Interface("v1")));
        Thread.Sleep(1100); // first retry after 1 s
        _e.Tick();
        Assert.Equal(ItemState.Configured, State(Keys.Route("10.9.0.0/16", "v1")));
    }

    [Fact]
    public void Restart_StateFile_ReadBack_NothingApplied_DriftRepaired()
    {
        Assert.True(Update(Pair).Ok);
        int ops = _linux.Ops.Count;
        using (ConfigEngine again = New())
        {
            Assert.Equal(3, again.Load() - 1); // v1, v2, route, arp: 4 items
            TxnResult r = again.Start();
            Assert.True(r.Ok);
            Assert.Equal(ops, _linux.Ops.Count);
            Assert.All(again.Status(), s => Assert.Equal(ItemState.Configured, s.State));
            Assert.Equal(_e.Get().Interfaces.Count, again.Get().Interfaces.Count);
        }
        // Someone deletes an address: a downstream resync puts it back.
        _linux.Links_["/run/netns/a"].Single(l => l.Name == "v1").Addrs.Clear();
        TxnResult rs = _e.Resync();
        Assert.True(rs.Ok);
        Assert.Equal(["10.1.0.1/24"], _linux.Links_["/run/netns/a"].Single(l => l.Name == "v1").Addrs);
        // A damaged state file is set aside, with the reason.
        File.WriteAllText(Path.Combine(_dir, ConfigEngine.StateFileName), "{not json");
        using ConfigEngine broken = New();
        var e = Assert.Throws<ConfigException>(() => broken.Load());
        Assert.Contains(".bad", e.Message, StringComparison.Ordinal);
    }

    private string StateFile => Path.Combine(_dir, ConfigEngine.StateFileName);
    private string Journal => Path.Combine(_dir, ConfigEngine.JournalFileName);

    private static string Dump(ConfigEngine e) => DocumentWriter.Document(e.Get()).ToJsonString();

    /// <summary>What a restarted engine holds must be what this one holds: the desired state, the
    /// revisions (each with its items), and nothing to do in Linux.</summary>
    private void AssertRestartsTheSame(ConfigEngine e)
    {
        using ConfigEngine again = New();
        again.Load();
        Assert.Equal(Dump(e), Dump(again));
        Assert.Equal(e.CurrentRevision, again.CurrentRevision);
        Assert.Equal(e.Revisions().Select(r => r.Number), again.Revisions().Select(r => r.Number));
        static string[] Items(Revision r) =>
            [.. r.Items.Select(i => $"{i.Source} {i.Item.Key} {DocumentWriter.Canonical(i.Item.Value)}").Order(StringComparer.Ordinal)];
        Assert.Equal(e.Revisions().Select(Items), again.Revisions().Select(Items));
        int ops = _linux.Ops.Count;
        Assert.True(again.Start().Ok);
        Assert.Equal(ops, _linux.Ops.Count);
    }

    [Fact]
    public void StateJournal_OneLinePerCommit_ReplayedOverTheSnapshot()
    {
        Assert.True(Update(Pair).Ok);
        Assert.True(File.Exists(StateFile));
        string snapshot = File.ReadAllText(StateFile);
        Assert.False(File.Exists(Journal));
        Assert.True(Update(Pair.Replace("mtu: 9000", "mtu: 1400", StringComparison.Ordinal)).Ok);
        Assert.True(_e.Delete("test", [Keys.Route("10.9.0.0/16", "v1")], new TxnOptions()).Ok);
        // Two commits, two short lines; the snapshot is not rewritten.
        Assert.Equal(snapshot, File.ReadAllText(StateFile));
        string[] lines = File.ReadAllLines(Journal);
        Assert.Equal(2, lines.Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Journal));
        Assert.Contains("\"mtu\":1400", lines[0], StringComparison.Ordinal);
        Assert.Contains(Keys.Route("10.9.0.0/16", "v1"), JsonNode.Parse(lines[1])!["desired_removed"]!.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal(3, _e.CurrentRevision);
        AssertRestartsTheSame(_e);
        // The restarted engine holds revision 2 as it was: rolling back to it brings the MTU and the route back.
        using ConfigEngine again = New();
        again.Load();
        Assert.True(again.Rollback(2, new TxnOptions()).Ok);
        Assert.Equal(1400u, _linux.Links_["/run/netns/a"].Single(l => l.Name == "v1").Mtu);
        Assert.Contains(again.Status(), s => s.Key == Keys.Route("10.9.0.0/16", "v1") && s.State == ItemState.Configured);
    }

    [Fact]
    public void StateJournal_LineCutShort_IsDropped_AndTheNextCommitStartsOnAWholeLine()
    {
        Assert.True(Update(Pair).Ok);
        Assert.True(Update(Pair.Replace("mtu: 9000", "mtu: 1400", StringComparison.Ordinal)).Ok);
        string expected = Dump(_e);
        File.AppendAllText(Journal, "{\"seq\":2,\"revision\":3,\"desi"); // lcpd stopped mid-write
        using (ConfigEngine again = New())
        {
            again.Load();
            Assert.Equal(expected, Dump(again));
            Assert.True(again.Start().Ok);
            Assert.True(again.Update("test", Doc(Pair.Replace("mtu: 9000", "mtu: 1300", StringComparison.Ordinal)), new TxnOptions()).Ok);
            Assert.All(File.ReadAllLines(Journal), l => JsonNode.Parse(l));
            AssertRestartsTheSame(again);
        }
        // A line missing in the middle is not guessed over: the state is set aside, with the reason.
        string[] lines = File.ReadAllLines(Journal);
        File.WriteAllLines(Journal, [lines[0], lines[^1]]);
        using ConfigEngine broken = New();
        var e = Assert.Throws<ConfigException>(() => broken.Load());
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Journal + ".bad"));
    }

    [Fact]
    public void StateJournal_FoldedIntoTheSnapshot_WhenLarge_StaleLinesSkipped()
    {
        using var e = new ConfigEngine(_linux, _pairs, new EngineOptions { StateDirectory = _dir, JournalCompactBytes = 1 }, NullLogger.Instance);
        Assert.True(e.Update("test", Doc(Pair), new TxnOptions()).Ok); // the first snapshot
        Assert.True(e.Update("test", Doc(Pair.Replace("mtu: 9000", "mtu: 1400", StringComparison.Ordinal)), new TxnOptions()).Ok);
        Assert.True(File.Exists(Journal));
        string line = File.ReadAllText(Journal);
        Assert.Equal(0, e.JournalCompactions);
        Assert.True(e.Update("test", Doc(Pair.Replace("mtu: 9000", "mtu: 1300", StringComparison.Ordinal)), new TxnOptions()).Ok);
        Assert.Equal(1, e.JournalCompactions);
        Assert.False(File.Exists(Journal));
        Assert.Equal(1, JsonNode.Parse(File.ReadAllText(StateFile))!["journal_seq"]!.GetValue<long>());
        Assert.True(File.Exists(Path.Combine(_dir, "revision-3.json")));
        AssertRestartsTheSame(e);
        // lcpd stopped after writing the snapshot, before emptying the journal: its old line is skipped.
        File.WriteAllText(Journal, line);
        using ConfigEngine again = New();
        again.Load();
        Assert.Equal(Dump(e), Dump(again));
        Assert.Equal(1300u, again.Get().Interfaces.Single(i => i.Name == "v1").Mtu);
    }

    /// <summary>The incremental plan must do exactly what the whole plan does: the same random
    /// changes (routes and ARP entries added, changed, deleted; routes that must wait; interface
    /// changes in between; injected failures, strict and best effort) through two engines, one
    /// always planning the whole state, leave Linux, the statuses and the results identical.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void IncrementalPlan_SameOutcomeAsTheWholePlan(int seed)
    {
        var rnd = new Random(seed);
        var sides = new[] { true, false }.Select(inc =>
        {
            var linux = new FakeLinux();
            var e = new ConfigEngine(linux, new FakePairs(linux), new EngineOptions { StateDirectory = null, Incremental = inc }, NullLogger.Instance);
            return (Linux: linux, Engine: e);
        }).ToArray();
        try
        {
            int incremental = 0;
            for (int step = 0; step < 300; step++)
            {
                string yaml;
                string[]? delete = null;
                var o = new TxnOptions { BestEffort = rnd.Next(4) == 0 };
                int failAt = rnd.Next(12) == 0 ? 1 + rnd.Next(2) : 0;
                int what = step == 0 ? -1 : rnd.Next(10);
                string Route() => $"{{outgoing_interface: {(rnd.Next(40) == 0 ? "v9" : "v1")}, dst_network: 10.50.{rnd.Next(20)}.0/24, gw_addr: 10.1.0.2, metric: {rnd.Next(3)}}}";
                string Arp() => $"{{interface: v2, ip_address: 10.1.0.{10 + rnd.Next(20)}, hw_address: \"02:00:00:00:00:{rnd.Next(16):x2}\"}}";
                switch (what)
                {
                    case -1:
                        yaml = Pair;
                        break;
                    case < 5:
                        yaml = $"linux_config: {{routes: [{string.Join(", ", Enumerable.Range(0, 1 + rnd.Next(3)).Select(_ => Route()).DistinctBy(r => r[..r.IndexOf(", gw", StringComparison.Ordinal)]))}]}}";
                        break;
                    case < 7:
                        yaml = $"linux_config: {{arp_entries: [{Arp()}]}}";
                        break;
                    case < 9:
                        yaml = "";
                        var keys = sides[0].Engine.Status().Where(x => x.Kind is "Route" or "Arp" && !x.Derived).Select(x => x.Key).ToList();
                        var waiting = sides[0].Engine.Status().Where(x => x.Kind is "Route" or "Arp" && x.State != ItemState.Configured).Select(x => x.Key).ToList();
                        if (waiting.Count != 0 && rnd.Next(2) == 0)
                            keys = waiting; // something waits: the state is settled again once it goes
                        if (keys.Count == 0)
                            continue;
                        delete = [keys[rnd.Next(keys.Count)]];
                        break;
                    default:
                        // The interface the routes use changes: the whole plan, whichever engine.
                        yaml = Pair.Replace("mtu: 9000", $"mtu: {1400 + rnd.Next(3) * 100}", StringComparison.Ordinal);
                        break;
                }
                var results = new List<string>();
                foreach (var (linux, e) in sides)
                {
                    int n = 0;
                    linux.FailOn = failAt == 0 ? null : op => (op.StartsWith("add route", StringComparison.Ordinal) || op.StartsWith("set neighbour", StringComparison.Ordinal)) && ++n == failAt ? 16 : 0;
                    TxnResult r = delete is null ? e.Update("test", Doc(yaml), o) : e.Delete("test", delete, o);
                    linux.FailOn = null;
                    results.Add($"{r.Ok} {r.Outcome} {r.Error} ops: {string.Join(", ", r.Ops.Select(x => $"{x.Op} {x.Key} {x.Result}"))} pending: {string.Join(", ", r.Pending.Select(x => $"{x.Key} {x.Reason}"))}");
                    results.Add(linux.Snapshot());
                    results.Add(string.Join("\n", e.Status().OrderBy(x => x.Key, StringComparer.Ordinal).Select(x => $"{x.Key} {x.State} {x.Reason}")));
                    results.Add(Dump(e));
                }
                for (int i = 0; i < 4; i++)
                    Assert.True(results[i] == results[i + 4], $"step {step} ({yaml}{string.Join(",", delete ?? [])}): incremental\n{results[i]}\nwhole\n{results[i + 4]}");
                if (sides[0].Engine.History()[^1].Phases.ContainsKey("incremental plan"))
                    incremental++;
            }
            Assert.True(incremental > 100, $"only {incremental} of 300 transactions were planned incrementally");
        }
        finally
        {
            foreach (var (_, e) in sides)
                e.Dispose();
        }
    }

    [Fact]
    public void Revisions_DiffAndRollback_ConfirmTimeoutReverts()
    {
        Update(Pair);
        int rev1 = _e.CurrentRevision;
        Update(Pair.Replace("mtu: 9000", "mtu: 1400", StringComparison.Ordinal));
        Assert.Equal(1400u, _linux.Links_["/run/netns/a"].Single(l => l.Name == "v1").Mtu);
        JsonObject diff = _e.Diff(rev1, _e.CurrentRevision);
        Assert.Equal(Keys.Interface("v1"), diff["changed"]![0]!["key"]!.GetValue<string>());
        Assert.True(_e.Rollback(rev1, new TxnOptions()).Ok);
        Assert.Equal(9000u, _linux.Links_["/run/netns/a"].Single(l => l.Name == "v1").Mtu);
        Assert.Throws<ConfigException>(() => _e.Rollback(999, new TxnOptions()));

        Assert.True(Update("linux_config: {interfaces: [{name: d1, type: DUMMY, namespace: {type: NSID, reference: a}}]}", new TxnOptions { ConfirmSeconds = 1 }).Ok);
        Assert.Contains(_linux.Links_["/run/netns/a"], l => l.Name == "d1");
        Assert.NotNull(_e.Confirming);
        Assert.Throws<ConfigException>(() => Update(Pair));
        for (int i = 0; i < 50 && _e.Confirming is not null; i++)
            Thread.Sleep(100);
        Thread.Sleep(200);
        Assert.DoesNotContain(_linux.Links_["/run/netns/a"], l => l.Name == "d1");
        Assert.Contains(_e.History(), h => h.Source == "confirm-timeout" && h.Outcome == "ok");
    }

    [Fact]
    public void VrfDeviceAndDummy_Created_MembershipSet_RemovedOnDelete()
    {
        TxnResult r = Update("""
            linux_config:
              interfaces:
                - {name: red, type: VRF_DEVICE, namespace: {type: NSID, reference: a}, enabled: true, vrf_dev: {routing_table: 100}}
                - {name: d1, type: DUMMY, namespace: {type: NSID, reference: a}, enabled: true, vrf_master_interface: red, ip_addresses: [10.5.0.1/24]}
            """);
        Assert.True(r.Ok, r.Error);
        Assert.Contains("create vrf red@/run/netns/a table 100", _linux.Ops);
        Assert.Contains("create dummy d1@/run/netns/a", _linux.Ops);
        FakeLinux.Link red = _linux.Links_["/run/netns/a"].Single(l => l.Name == "red");
        Assert.Equal(red.Index, _linux.Links_["/run/netns/a"].Single(l => l.Name == "d1").Master);
        Assert.True(_e.Delete("test", ["config/linux/interfaces/"], new TxnOptions()).Ok);
        Assert.DoesNotContain(_linux.Links_["/run/netns/a"], l => l.Name is "red" or "d1");
    }

    [Fact]
    public void ExistingAndTapToVpp_Adopted_PropertiesRestoredOnDelete_NeverDeleted()
    {
        _linux.AddNamespace("a");
        FakeLinux.Link eth = _linux.Add("/run/netns/a", "eth9");
        eth.Mtu = 1500;
        eth.Addrs.Add("192.0.2.1/24");
        _pairs.Create(new LcpPair { Port = "p0", HostIf = "lcp0", Netns = "a" });
        string before = _linux.Snapshot();
        Assert.True(Update("""
            linux_config:
              interfaces:
                - {name: uplink, type: EXISTING, host_if_name: eth9, namespace: {type: NSID, reference: a}, enabled: true, mtu: 9000, ip_addresses: [192.0.2.1/24, 198.51.100.1/24]}
                - {name: m, type: TAP_TO_VPP, enabled: true, ip_addresses: [203.0.113.1/24], tap: {vpp_tap_if_name: lcp0}}
            """).Ok);
        Assert.Equal(9000u, eth.Mtu);
        Assert.Equal(["203.0.113.1/24"], _linux.Links_["/run/netns/a"].Single(l => l.Name == "lcp0").Addrs);
        Assert.True(_e.Delete("test", ["config/linux/"], new TxnOptions()).Ok);
        // The pre-existing address stays (it was not lcpd's); MTU, state and the rest as before.
        Assert.Equal(before, _linux.Snapshot());
    }

    [Fact]
    public void SubInterfaceMirror_MtuGrowsParentFirst_ShrinksChildFirst()
    {
        _pairs.Create(new LcpPair { Port = "p0", HostIf = "lcp0" });
        _pairs.Create(new LcpPair { Port = "p0.100", HostIf = "lcp0v100" });
        _pairs.Create(new LcpPair { Port = "p0.100.7", HostIf = "lcp0v100i7" });
        // Names chosen so that key order is the wrong order for growing (sub < up).
        string Doc(uint parent, uint child, uint inner) => $$$"""
            linux_config:
              interfaces:
                - {name: up, type: TAP_TO_VPP, mtu: {{{parent}}}, tap: {vpp_tap_if_name: lcp0}}
                - {name: sub, type: TAP_TO_VPP, mtu: {{{child}}}, tap: {vpp_tap_if_name: lcp0v100}}
                - {name: inner, type: TAP_TO_VPP, mtu: {{{inner}}}, tap: {vpp_tap_if_name: lcp0v100i7}}
            """;
        List<string> MtuOps(int from) => [.. _linux.Ops.Skip(from).Where(o => o.Contains(" mtu ", StringComparison.Ordinal)).Select(o => o.Split('@')[0])];
        Assert.True(Update(Doc(1500, 1500, 1500)).Ok);
        int n = _linux.Ops.Count;
        Assert.True(Update(Doc(9000, 8000, 7000)).Ok);
        Assert.Equal(["set link lcp0", "set link lcp0v100", "set link lcp0v100i7"], MtuOps(n));
        n = _linux.Ops.Count;
        Assert.True(Update(Doc(1400, 1300, 1200)).Ok);
        Assert.Equal(["set link lcp0v100i7", "set link lcp0v100", "set link lcp0"], MtuOps(n));
    }

    [Fact]
    public void Validation_FieldPaths_CyclesAndCrossChecks()
    {
        var (doc, paths) = DocumentReader.Parse("""
            linux_config:
              interfaces:
                - {name: v1, type: VETH, veth: {peer_if_name: v2}, ip_addresses: [10.0.0.1]}
                - {name: v2, type: VETH, veth: {peer_if_name: v3}}
                - {name: x, type: EXISTING, host_if_name: "bad name"}
                - {name: y, type: EXISTING, vrf_master_interface: x}
              routes:
                - {outgoing_interface: v1, dst_network: 10.0.0.0/8, gw_addr: "2001:db8::1"}
              arp_entries:
                - {interface: v1, ip_address: 10.0.0.300, hw_address: "02:00:00:00:00:01"}
              iptables_rulechains:
                - {name: c, chain_type: FORWARD, table: NAT, rules: ["-j ACCEPT"]}
                - {name: d, chain_type: CUSTOM, rules: ["-A INPUT -j DROP"]}
            """);
        TxnResult r = _e.Update("test", doc, new TxnOptions { Paths = paths });
        Assert.Equal("refused", r.Outcome);
        string all = string.Join("\n", r.Errors);
        foreach (string expect in new[]
                 {
                     "linux_config.interfaces[0].ip_addresses[0]: not an address with a prefix length",
                     "linux_config.interfaces[0].veth.peer_if_name: v2 names v3 as its peer, not v1",
                     "linux_config.interfaces[2].host_if_name: not a Linux interface name",
                     "linux_config.interfaces[3].vrf_master_interface: x is not a VRF_DEVICE",
                     "linux_config.routes[0].gw_addr: 2001:db8::1 is not of the family of 10.0.0.0/8",
                     "linux_config.arp_entries[0].ip_address: not an IP address",
                     "linux_config.iptables_rulechains[0].chain_type: table NAT has no FORWARD chain",
                     "linux_config.iptables_rulechains[1].chain_name: required for a CUSTOM chain",
                     "linux_config.iptables_rulechains[1].rules[0]: a rule is a rule specification",
                 })
            Assert.Contains(expect, all, StringComparison.Ordinal);
        Assert.Empty(_linux.Ops);
        Assert.Empty(_e.Status());
    }

    [Fact]
    public void IptablesChains_CustomOwnedWhole_BuiltinRulesTagged_PolicyRestored()
    {
        Assert.True(Update("""
            linux_config:
              iptables_rulechains:
                - {name: web, namespace: {type: NSID, reference: a}, table: FILTER, chain_type: INPUT, default_policy: DROP, rules: ["-p tcp --dport 80 -j ACCEPT"]}
                - {name: mine, namespace: {type: NSID, reference: a}, table: FILTER, chain_type: CUSTOM, chain_name: MINE, rules: ["-j RETURN"]}
            """).Ok);
        Assert.Equal(["-p tcp --dport 80 -j ACCEPT -m comment --comment lcpd:web"], _linux.Chains[("/run/netns/a", "filter", "INPUT")]);
        Assert.Equal("DROP", _linux.Policies[("/run/netns/a", "INPUT")]);
        Assert.Equal(["-j RETURN"], _linux.Chains[("/run/netns/a", "filter", "MINE")]);
        // A rule someone else put in INPUT is never touched.
        _linux.Chains[("/run/netns/a", "filter", "INPUT")].Add("-s 192.0.2.0/24 -j ACCEPT");
        Assert.True(_e.Delete("test", ["config/linux/"], new TxnOptions()).Ok);
        Assert.Equal(["-s 192.0.2.0/24 -j ACCEPT"], _linux.Chains[("/run/netns/a", "filter", "INPUT")]);
        Assert.Equal("ACCEPT", _linux.Policies[("/run/netns/a", "INPUT")]);
        Assert.False(_linux.Chains.ContainsKey(("/run/netns/a", "filter", "MINE")));
    }

    [Fact]
    public void Graph_ListsKeysAndDependencies()
    {
        Update(Pair);
        string dot = _e.Graph();
        Assert.StartsWith("digraph", dot, StringComparison.Ordinal);
        Assert.Contains($"\"{Keys.Route("10.9.0.0/16", "v1")}\" -> \"{Keys.Interface("v1")}\"", dot, StringComparison.Ordinal);
        Assert.Contains($"\"{Keys.Interface("v1")}\" -> \"{Keys.Interface("v2")}\" [style=dashed]", dot, StringComparison.Ordinal);
    }
}

/// <summary>The rtnetlink requests for the kinds this machine's kernel cannot create (VRF, dummy)
/// and for enslaving a link, read back with lcpd's own parser.</summary>
public sealed class RequestTests
{
    private sealed class LinkSink : INetlinkSink
    {
        public string Name = "", Kind = "";
        public uint VrfTable, Mtu;
        public int Master, Index;
        public bool Up;

        public void Link(in LinkMsg m)
        {
            Name = System.Text.Encoding.ASCII.GetString(m.Name);
            Kind = System.Text.Encoding.ASCII.GetString(m.Kind);
            VrfTable = m.VrfTable;
            Master = m.Master;
            Index = m.IfIndex;
            Mtu = m.Mtu;
            Up = m.AdminUp;
        }

        public void Address(in AddrMsg m) { }
        public void Route(in RouteMsg m) { }
        public void Neighbor(in NeighMsg m) { }
        public void Nexthop(in NexthopMsg m) { }
        public void Rule(in RuleMsg m) { }
        public void Control(ushort type, int errno, uint seq) { }
    }

    [Fact]
    public void VrfAndDummy_CreateRequests_CarryKindAndTable()
    {
        var sink = new LinkSink();
        byte[] vrf = NetlinkLinux.CreateLinkRequest("red", "vrf", 100).End().ToArray();
        Assert.Equal(Nl.NewLink, BitConverter.ToUInt16(vrf, 4));
        Assert.Equal(Nl.FRequest | Nl.FAck | Nl.FCreate | Nl.FExcl, BitConverter.ToUInt16(vrf, 6));
        Assert.Equal(0, NetlinkParser.Parse(vrf, ref sink));
        Assert.Equal(("red", "vrf", 100u), (sink.Name, sink.Kind, sink.VrfTable));
        sink = new LinkSink();
        NetlinkParser.Parse(NetlinkLinux.CreateLinkRequest("d0", "dummy", 0).End().ToArray(), ref sink);
        Assert.Equal(("d0", "dummy", 0u), (sink.Name, sink.Kind, sink.VrfTable));
    }

    [Fact]
    public void SetLink_Master_Mtu_Up_InOneRequest()
    {
        var sink = new LinkSink();
        NetlinkParser.Parse(NetlinkLinux.SetLinkRequest(7, new LinkChange { Master = 12, Mtu = 1400, Up = true }, -1).End().ToArray(), ref sink);
        Assert.Equal((7, 12, 1400u, true), (sink.Index, sink.Master, sink.Mtu, sink.Up));
    }
}

public sealed class StrictScopeTests
{
    [Fact]
    public void Strict_AnItemThatFailedBefore_DoesNotRevertAnUnrelatedChange()
    {
        var linux = new FakeLinux();
        using var e = new ConfigEngine(linux, new FakePairs(linux), new EngineOptions { StateDirectory = null }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        linux.FailOn = op => op.StartsWith("add route", StringComparison.Ordinal) ? 22 : 0;
        var pair = DocumentReader.Parse("""
            linux_config:
              interfaces:
                - {name: v1, type: VETH, namespace: {type: NSID, reference: a}, enabled: true, ip_addresses: [10.1.0.1/24], veth: {peer_if_name: v2}}
                - {name: v2, type: VETH, namespace: {type: NSID, reference: b}, enabled: true, veth: {peer_if_name: v1}}
              routes:
                - {outgoing_interface: v1, dst_network: 10.9.0.0/16, gw_addr: 10.1.0.2}
            """).Doc;
        Assert.Equal("partial", e.Update("t", pair, new TxnOptions { BestEffort = true }).Outcome);
        Assert.Equal(ItemState.Failed, e.Status().Single(s => s.Key == Keys.Route("10.9.0.0/16", "v1")).State);
        // A strict change elsewhere: the old failure is retried, fails again, and stays a failure
        // of its own; the change is applied, not reverted.
        var arp = DocumentReader.Parse("linux_config: {arp_entries: [{interface: v1, ip_address: 10.1.0.9, hw_address: '02:00:00:00:00:09'}]}").Doc;
        TxnResult r = e.Update("t", arp, new TxnOptions());
        Assert.NotEqual("reverted", r.Outcome);
        Assert.Equal(ItemState.Configured, e.Status().Single(s => s.Key == Keys.Arp("v1", "10.1.0.9")).State);
        Assert.Equal(ItemState.Failed, e.Status().Single(s => s.Key == Keys.Route("10.9.0.0/16", "v1")).State);
        // But a strict change whose own item fails is reverted.
        var bad = DocumentReader.Parse("linux_config: {routes: [{outgoing_interface: v1, dst_network: 10.8.0.0/16}]}").Doc;
        Assert.Equal("reverted", e.Update("t", bad, new TxnOptions()).Outcome);
    }
}
