using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Lcore;

namespace LinuxCp.Dataplane.Tests;

/// <summary>The classifier's control-plane side: ids and counter slots, rule sets rebuilt beside
/// the published ones, nothing freed or reused before a grace period, counters summed over
/// workers with clear as a baseline, all-or-none adds with clear errors.</summary>
public sealed unsafe class ClassifierTests : IDisposable
{
    private sealed class FakePublisher : IFeaturePublisher
    {
        public List<WorkerContext> Contexts { get; } = [new(0, 1, 0), new(1, 2, 1)];
        public IReadOnlyList<WorkerContext> Workers => Contexts;
        public List<FeatureSnapshot> Published { get; } = [];
        public bool GraceCompletes { get; set; } = true;

        public bool Publish(FeatureSnapshot snapshot, TimeSpan graceTimeout)
        {
            Published.Add(snapshot);
            return GraceCompletes;
        }
    }

    private sealed class CountingMatcher(AclRule[] rules, bool v6, List<CountingMatcher> live) : IAclMatcher
    {
        private readonly ManagedAclMatcher _inner = new(rules, v6);
        public bool Disposed { get; private set; }
        public int RuleCount => _inner.RuleCount;
        public void Classify(byte** keys, uint* results, int n) => _inner.Classify(keys, results, n);

        public void Dispose()
        {
            Assert.False(Disposed, "matcher disposed twice");
            Disposed = true;
            live.Remove(this);
        }
    }

    private readonly FakePublisher _pub = new();
    private readonly List<CountingMatcher> _live = [];
    private readonly Classifier _c;

    public ClassifierTests()
    {
        _c = new Classifier(_pub, name => name switch { "p0" => 0, "p1" => 1, _ => null }, (rules, v6) =>
        {
            var m = new CountingMatcher(rules, v6, _live);
            _live.Add(m);
            return m;
        });
    }

    public void Dispose()
    {
        _c.Dispose();
        _pub.Contexts.ForEach(w => w.Dispose());
    }

    [Fact]
    public void ForgetPort_DropsItsTrackingAndPuntBudgets_OthersStay()
    {
        const long hz = 1_000_000_000;
        using var c = new Classifier(_pub, _ => 0, (rules, v6) => new CountingMatcher(rules, v6, _live), ensureFlowTables: () => { });
        c.SetPolicers(PuntPolicers.Defaults(hz, 1).WithPort(0, PuntClass.Routing, (10, 1)).WithPort(1, PuntClass.Routing, (20, 2)));
        c.SetTracked(0, true);
        c.SetTracked(1, true);
        int published = _pub.Published.Count;
        c.ForgetPort(0);
        Assert.False(c.IsTracked(0));
        Assert.True(c.IsTracked(1));
        Assert.DoesNotContain(c.Current.Policers.Overrides.Keys, k => k.Port == 0);
        Assert.Contains(c.Current.Policers.Overrides.Keys, k => k.Port == 1);
        Assert.False(c.Current.Flows.Tracked[0]);
        Assert.True(_pub.Published.Count > published);
        // Nothing set for the id: nothing to publish.
        published = _pub.Published.Count;
        c.ForgetPort(7);
        Assert.Equal(published, _pub.Published.Count);
    }

    private static IReadOnlyList<AclRule> Parse(string words) => AclRuleParser.Parse(words.Split(' '));

    private void Hit(int worker, AclRule r, long packets, long bytes)
    {
        // The slot is what the published rule set maps the rule to.
        AclPortRules set = _c.Current.Of(r.Direction)[r.Port == "p0" ? 0 : 1]!;
        int rank = Array.FindIndex(r.V6 ? set.Rules6 : set.Rules4, x => x.Id == r.Id);
        int slot = (r.V6 ? set.Slot6 : set.Slot4)[rank];
        _pub.Contexts[worker].AclHits[2 * slot] += packets;
        _pub.Contexts[worker].AclHits[2 * slot + 1] += bytes;
    }

    [Fact]
    public void Add_GivesIds_PublishesOnlyThatPortAndDirection()
    {
        var a = _c.Add(Parse("p0 input dst 10.0.0.0/8 drop"));
        var b = _c.Add(Parse("p1 output proto udp pass"));
        Assert.Equal(1u, a[0].Id);
        Assert.Equal([2u, 3u], b.Select(r => r.Id)); // no address: one rule per family
        FeatureSnapshot s = _c.Current;
        Assert.Same(s, _pub.Published[^1]);
        Assert.Equal(1, s.Input[0]!.Count);
        Assert.Null(s.Output[0]);
        Assert.Null(s.Input[1]);
        Assert.Equal(2, s.Output[1]!.Count);
        Assert.NotNull(s.Output[1]!.V4);
        Assert.NotNull(s.Output[1]!.V6);
        Assert.Null(s.Input[0]!.V6);
        // The first snapshot's p0 set is carried into the second unchanged.
        Assert.Same(_pub.Published[0].Input[0], s.Input[0]);
    }

    [Fact]
    public void Delete_RebuildsAside_FreesOldSetAfterGrace()
    {
        var r = _c.Add(Parse("p0 input dst 10.0.0.0/8 drop"));
        _c.Add(Parse("p0 input dst 11.0.0.0/8 drop"));
        Assert.Single(_live); // the first set was replaced and freed
        AclPortRules two = _c.Current.Input[0]!;
        Assert.True(_c.Delete(r[0].Id));
        Assert.Equal(1, _c.Current.Input[0]!.Count);
        Assert.True(((CountingMatcher)two.V4!).Disposed);
        Assert.False(_c.Delete(r[0].Id));
        _c.DeleteAll("p0");
        Assert.Null(_c.Current.Input[0]);
        Assert.Empty(_live);
    }

    [Fact]
    public void GraceTimeout_KeepsOldSetsAndSlots_UntilALaterGracePeriod()
    {
        var r = _c.Add(Parse("p0 input dst 10.0.0.0/8 drop"));
        AclPortRules old = _c.Current.Input[0]!;
        Hit(0, r[0], 5, 500);
        _pub.GraceCompletes = false;
        Assert.True(_c.Delete(r[0].Id));
        Assert.False(((CountingMatcher)old.V4!).Disposed, "freed while a worker may still use it");
        // Its slot is not reused yet: a worker may still count on it.
        var n = _c.Add(Parse("p0 input dst 12.0.0.0/8 drop"));
        Assert.Equal(0, _c.Show().Single(x => x.Rule.Id == n[0].Id).Packets);
        _pub.GraceCompletes = true;
        _c.Add(Parse("p1 input dst 13.0.0.0/8 drop"));
        Assert.True(((CountingMatcher)old.V4!).Disposed);
        // The slot is free now, and a rule that reuses it starts from zero.
        var reuse = _c.Add(Parse("p1 output dst 14.0.0.0/8 drop"));
        Assert.Equal(0, _c.Show().Single(x => x.Rule.Id == reuse[0].Id).Packets);
    }

    [Fact]
    public void Counters_SumOverWorkers_ClearIsABaseline()
    {
        var r = _c.Add(Parse("p0 input dst 10.0.0.0/8 drop"));
        Hit(0, r[0], 3, 300);
        Hit(1, r[0], 4, 400);
        AclRuleState st = _c.Show("p0").Single();
        Assert.Equal((7, 700), (st.Packets, st.Bytes));
        _c.ClearCounters();
        Assert.Equal(0, _c.Show().Single().Packets);
        Hit(1, r[0], 2, 200);
        Assert.Equal((2, 200), (_c.Show().Single().Packets, _c.Show().Single().Bytes));
        Assert.Empty(_c.Show("p1"));
    }

    [Fact]
    public void Add_IsAllOrNone_WithClearErrors()
    {
        var e = Assert.Throws<ClassifierException>(() => _c.Add(Parse("nosuch drop")));
        Assert.Contains("no dataplane port named 'nosuch'", e.Message);
        e = Assert.Throws<ClassifierException>(() => _c.Add(Parse("p0 reflect")));
        Assert.Contains("no flow tables", e.Message);
        Assert.Equal(0, _c.Count);
        Assert.Empty(_pub.Published);

        // A matcher that cannot be built: nothing is added, nothing published.
        var failing = new Classifier(_pub, _ => 0, (_, _) => throw new InvalidOperationException("rte_acl build failed: Cannot allocate memory"));
        e = Assert.Throws<ClassifierException>(() => failing.Add(Parse("p0 dst 10.0.0.0/8 drop")));
        Assert.Contains("Cannot allocate memory", e.Message);
        Assert.Equal(0, failing.Count);
        Assert.Empty(_pub.Published);
    }

    [Fact]
    public void Capacity_IsEnforced()
    {
        var many = Enumerable.Range(0, Classifier.MaxRules).Select(i => Parse($"p0 dst 10.{i >> 8 & 255}.{i & 255}.0/24 drop")[0]).ToList();
        _c.Add(many);
        Assert.Equal(Classifier.MaxRules, _c.Count);
        var e = Assert.Throws<ClassifierException>(() => _c.Add(Parse("p1 dst 10.0.0.0/8 drop")));
        Assert.Contains($"at most {Classifier.MaxRules}", e.Message);
    }
}
