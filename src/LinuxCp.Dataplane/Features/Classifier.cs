using LinuxCp.Dataplane.Lcore;

namespace LinuxCp.Dataplane.Features;

/// <summary>A rule as <c>show classify</c> reports it: the rule and its counters summed over
/// the workers since it was added (or since <c>clear classify</c>).</summary>
public sealed record AclRuleState(AclRule Rule, long Packets, long Bytes);

/// <summary>The control plane's side of the classifier: owns the rules, gives them ids and
/// counter slots, rebuilds the rule set of each port and direction that changed beside the one
/// in use, publishes a new <see cref="FeatureSnapshot"/> and frees what it replaced after a
/// grace period. Workers never wait for it; callers are serialised by its lock.</summary>
public sealed class Classifier : IDisposable
{
    /// <summary>Rules (and counter slots) lcpd holds at once; each worker keeps two longs per slot.</summary>
    public const int MaxRules = 8192;

    private static readonly TimeSpan GraceTimeout = TimeSpan.FromSeconds(2);

    private readonly IFeaturePublisher _pub;
    private readonly IReadOnlyList<WorkerContext> _workers;
    private readonly Func<string, ushort?> _portOf;
    private readonly Func<AclRule[], bool, IAclMatcher> _matcher;
    private readonly object _lock = new();
    private readonly SortedDictionary<uint, AclRule> _rules = [];
    private readonly Dictionary<uint, int> _slotOf = [];
    private readonly Stack<int> _freeSlots = new();
    private readonly long[] _base = new long[2 * MaxRules];
    // Replaced rule sets and slots of deleted rules: released only after a grace period, since
    // a worker may still classify with the old set and count on the old slot until then.
    private readonly List<AclPortRules> _retired = [];
    private readonly List<int> _retiredSlots = [];
    private FeatureSnapshot _current = FeatureSnapshot.None;
    private readonly Action? _ensureFlowTables;
    private readonly bool[] _tracked = new bool[Interfaces.Max];
    private FlowTimeouts _timeouts = FlowTimeouts.Default;
    private FlowFullPolicy _fullPolicy = FlowFullPolicy.Pass;
    private uint _nextId = 1;
    private int _nextSlot;

    /// <param name="portOf">the port id of a dataplane port name that may carry rules (null: no such port)</param>
    /// <param name="matcher">builds a matcher over one family's rules in match order</param>
    /// <param name="policers">the punt policers to start with (published now)</param>
    /// <param name="ensureFlowTables">gives every worker a flow table if it has none (reflect
    /// rules and tracked ports need one); throws <see cref="ClassifierException"/> if it cannot</param>
    public Classifier(IFeaturePublisher publisher, Func<string, ushort?> portOf, Func<AclRule[], bool, IAclMatcher> matcher,
        PuntPolicers? policers = null, Action? ensureFlowTables = null)
    {
        _ensureFlowTables = ensureFlowTables;
        _pub = publisher;
        _workers = publisher.Workers;
        _portOf = portOf;
        _matcher = matcher;
        if (policers is not null)
        {
            _current = _current.With(policers);
            _pub.Publish(_current, GraceTimeout);
        }
    }

    /// <summary>Publishes new punt policer settings (the workers' buckets carry on, clamped to
    /// the new capacity). Nothing to free: the settings are a small managed object.</summary>
    public void SetPolicers(PuntPolicers policers)
    {
        lock (_lock)
        {
            _current = _current.With(policers);
            if (_pub.Publish(_current, GraceTimeout))
                ReleaseRetired();
        }
    }

    /// <summary>The rule sets the workers use now.</summary>
    public FeatureSnapshot Current
    {
        get
        {
            lock (_lock)
                return _current;
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
                return _rules.Count;
        }
    }

    /// <summary>Adds rules as parsed (ids are given here, in order); all or none. Returns them with their ids.</summary>
    public IReadOnlyList<AclRule> Add(IReadOnlyList<AclRule> parsed)
    {
        lock (_lock)
        {
            if (parsed.Any(r => r.Action == AclAction.Reflect))
                EnsureFlowTables();
            foreach (AclRule r in parsed)
                if (_portOf(r.Port) is null)
                    throw new ClassifierException($"no dataplane port named '{r.Port}' (rules go on ports, not on mirrors; see show interfaces)");
            if (_rules.Count + parsed.Count > MaxRules)
                throw new ClassifierException($"the classifier holds at most {MaxRules} rules ({_rules.Count} in use)");
            var added = new List<AclRule>(parsed.Count);
            foreach (AclRule p in parsed)
            {
                AclRule r = p with { Id = _nextId++ };
                int slot = _freeSlots.Count != 0 ? _freeSlots.Pop() : _nextSlot++;
                _slotOf[r.Id] = slot;
                _rules[r.Id] = r;
                // A reused slot may carry an old rule's counts: start from them.
                (_base[2 * slot], _base[2 * slot + 1]) = Sum(slot);
                added.Add(r);
            }
            try
            {
                Rebuild(added.Select(r => (r.Port, r.Direction)));
            }
            catch
            {
                foreach (AclRule r in added)
                {
                    _rules.Remove(r.Id);
                    _freeSlots.Push(_slotOf[r.Id]);
                    _slotOf.Remove(r.Id);
                }
                throw;
            }
            return added;
        }
    }

    /// <summary>Deletes a rule; false if there is none with that id.</summary>
    public bool Delete(uint id)
    {
        lock (_lock)
        {
            if (!_rules.Remove(id, out AclRule? r))
                return false;
            _retiredSlots.Add(_slotOf[id]);
            _slotOf.Remove(id);
            Rebuild([(r.Port, r.Direction)]);
            return true;
        }
    }

    /// <summary>Deletes every rule (of one port, if given); returns how many went.</summary>
    public int DeleteAll(string? port = null)
    {
        lock (_lock)
        {
            var gone = _rules.Values.Where(r => port is null || r.Port == port).ToList();
            foreach (AclRule r in gone)
            {
                _rules.Remove(r.Id);
                _retiredSlots.Add(_slotOf[r.Id]);
                _slotOf.Remove(r.Id);
            }
            if (gone.Count != 0)
                Rebuild(gone.Select(r => (r.Port, r.Direction)));
            return gone.Count;
        }
    }

    /// <summary>The rules (of one port, if given) in match order per port and direction, with counters.</summary>
    public List<AclRuleState> Show(string? port = null)
    {
        lock (_lock)
        {
            var list = new List<AclRuleState>();
            foreach (AclRule r in _rules.Values.Where(r => port is null || r.Port == port)
                         .OrderBy(r => r.Port, StringComparer.Ordinal).ThenBy(r => r.Direction).ThenBy(r => r.Priority).ThenBy(r => r.Id))
            {
                int slot = _slotOf[r.Id];
                var (p, b) = Sum(slot);
                list.Add(new AclRuleState(r, p - _base[2 * slot], b - _base[2 * slot + 1]));
            }
            return list;
        }
    }

    /// <summary>Resets every rule's counters (the workers' counters are theirs to write: this
    /// takes a baseline that reads subtract).</summary>
    public void ClearCounters()
    {
        lock (_lock)
        {
            foreach (int slot in _slotOf.Values)
                (_base[2 * slot], _base[2 * slot + 1]) = Sum(slot);
        }
    }

    private (long Packets, long Bytes) Sum(int slot)
    {
        long p = 0, b = 0;
        foreach (WorkerContext w in _workers)
            (p, b) = (p + w.AclHitCount(slot), b + w.AclHitBytes(slot));
        return (p, b);
    }

    /// <summary>Builds the rule sets of the given ports and directions aside, publishes a
    /// snapshot with them and, after the grace period, frees what they replaced.</summary>
    private void Rebuild(IEnumerable<(string Port, AclDirection Dir)> changed)
    {
        AclPortRules?[] input = (AclPortRules?[])_current.Input.Clone();
        AclPortRules?[] output = (AclPortRules?[])_current.Output.Clone();
        var built = new List<AclPortRules>();
        var replaced = new List<AclPortRules>();
        try
        {
            foreach (var (port, dir) in changed.Distinct())
            {
                ushort id = _portOf(port) ?? throw new ClassifierException($"no dataplane port named '{port}'");
                AclPortRules?[] target = dir == AclDirection.Input ? input : output;
                var rules = _rules.Values.Where(r => r.Port == port && r.Direction == dir).ToList();
                AclPortRules? next = null;
                if (rules.Count != 0)
                {
                    next = new AclPortRules(rules, r => _slotOf[r.Id], _matcher);
                    built.Add(next);
                }
                if (target[id] is { } old)
                    replaced.Add(old);
                target[id] = next;
            }
        }
        catch (Exception e)
        {
            foreach (AclPortRules b in built)
                b.Dispose();
            throw e as ClassifierException ?? new ClassifierException($"cannot build the classifier: {e.Message}");
        }
        _current = _current.With(input, output).With(FlowSettingsNow());
        _retired.AddRange(replaced);
        if (_pub.Publish(_current, GraceTimeout))
            ReleaseRetired();
        // else: a worker did not pass a quiescent point in time; what it may still use stays
        // allocated until a later publication's grace period completes.
    }

    private void EnsureFlowTables()
    {
        if (_ensureFlowTables is null)
            throw new ClassifierException("this lcpd has no flow tables (reflect and flow tracking need them)");
        _ensureFlowTables();
    }

    /// <summary>The flow settings of now: tracked ports, ports whose flows stay alive (tracked, or
    /// with reflect rules), timeouts, full policy.</summary>
    private FlowSettings FlowSettingsNow()
    {
        var live = (bool[])_tracked.Clone();
        foreach (AclRule r in _rules.Values)
            if (r.Action == AclAction.Reflect && _portOf(r.Port) is ushort p)
                live[p] = true;
        return new FlowSettings((bool[])_tracked.Clone(), live, _timeouts, _fullPolicy);
    }

    /// <summary>Starts or stops tracking every flow of a port (flow enable / disable).</summary>
    public void SetTracked(ushort port, bool on)
    {
        lock (_lock)
        {
            if (on)
                EnsureFlowTables();
            _tracked[port] = on;
            PublishFlows();
        }
    }

    /// <summary>A port (or sub-interface) went away: its flow tracking and its own punt budgets
    /// go with it, so a port that gets its id later starts from the defaults. (Rules name ports
    /// by name: they stay, and apply again to a port made with that name.)</summary>
    public void ForgetPort(ushort port)
    {
        lock (_lock)
        {
            if (_tracked[port])
            {
                _tracked[port] = false;
                PublishFlows();
            }
            PuntPolicers now = _current.Policers;
            PuntPolicers next = now.WithoutPort(port);
            if (!ReferenceEquals(next, now))
            {
                _current = _current.With(next);
                if (_pub.Publish(_current, GraceTimeout))
                    ReleaseRetired();
            }
        }
    }

    public bool IsTracked(ushort port)
    {
        lock (_lock)
            return _tracked[port];
    }

    public void SetFlowTimeouts(FlowTimeouts t)
    {
        lock (_lock)
        {
            _timeouts = t;
            PublishFlows();
        }
    }

    public void SetFullPolicy(FlowFullPolicy p)
    {
        lock (_lock)
        {
            _fullPolicy = p;
            PublishFlows();
        }
    }

    private void PublishFlows()
    {
        _current = _current.With(FlowSettingsNow());
        if (_pub.Publish(_current, GraceTimeout))
            ReleaseRetired();
    }

    private void ReleaseRetired()
    {
        foreach (AclPortRules r in _retired)
            r.Dispose();
        _retired.Clear();
        foreach (int s in _retiredSlots)
            _freeSlots.Push(s);
        _retiredSlots.Clear();
    }

    /// <summary>Unpublishes every rule and frees them (at shutdown, after the workers stopped,
    /// or with a grace period while they run).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            var all = _current.Input.Concat(_current.Output).OfType<AclPortRules>().ToList();
            _current = _current.With(FeatureSnapshot.None.Input, FeatureSnapshot.None.Output);
            _retired.AddRange(all);
            if (_pub.Publish(_current, GraceTimeout))
                ReleaseRetired();
        }
    }
}

public sealed class ClassifierException(string message) : Exception(message);

/// <summary>Where the classifier publishes (the dataplane engine; a fake in unit tests).</summary>
public interface IFeaturePublisher
{
    IReadOnlyList<WorkerContext> Workers { get; }

    /// <summary>Makes the snapshot what workers read from their next iteration; true once no
    /// worker can still use the previous one.</summary>
    bool Publish(FeatureSnapshot snapshot, TimeSpan graceTimeout);
}
