using System.Text.Json;
using System.Text.Json.Nodes;
using DpdkSharp;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Dataplane.Observe;
using LinuxCp.Management.Contracts;
using LinuxCp.Management.Observe;

namespace LinuxCp.Management.Api;

/// <summary>The core of every command. The API socket (and later REST) only parse, call these
/// and format, so every front end answers the same way.</summary>
public sealed partial class CommandHandlers : IDisposable
{
    private readonly RouterState _s;
    private readonly object _clearLock = new();
    // Baselines taken by the clear commands: the workers' counters are written only by the
    // workers, so "clear" subtracts a snapshot on read instead of writing to them.
    private long[][] _reasonBase;
    private long[][] _pathBase;
    private HistogramSnapshot[] _latencyBase;
    private readonly HistogramSnapshot _latencyScratch = new(); // show latency's merge (under _clearLock)

    /// <param name="flowTable">flows per worker's flow table (--flow-table)</param>
    public CommandHandlers(RouterState state, int flowTable = DefaultFlowTable)
    {
        _s = state;
        Routing = new RoutingCommands(state);
        Interfaces = new InterfaceCommands(state);
        Capture = new CaptureService(state.Engine);
        Gc = new GcMonitor();
        Flows = new FlowCommands(state, () => Classify!.Rules, flowTable);
        Classify = new ClassifyCommands(state, Flows.EnsureTables);
        Punt = new PuntCommands(state, Classify.Rules, (long)Eal.TscHz);
        int w = state.Engine.WorkerCount;
        _reasonBase = [.. Enumerable.Range(0, w).Select(_ => new long[(int)Reason.Count])];
        _pathBase = [.. Enumerable.Range(0, w).Select(_ => new long[(int)RuntimePath.Count * 2])];
        _latencyBase = [.. Enumerable.Range(0, (int)LatencyPath.Count).Select(_ => new HistogramSnapshot())];
    }

    public CaptureService Capture { get; }

    /// <summary>The classifier rules (input and output features) and their commands.</summary>
    public ClassifyCommands Classify { get; }

    public const int DefaultFlowTable = 262_144;

    /// <summary>The flow tracker.</summary>
    public FlowCommands Flows { get; }

    /// <summary>The punt policers (control-plane protection).</summary>
    public PuntCommands Punt { get; }

    /// <summary>set interface state|mtu.</summary>
    public InterfaceCommands Interfaces { get; }

    /// <summary>The pair and FIB commands.</summary>
    public RoutingCommands Routing { get; }

    /// <summary>The runtime's GC events since start (or the last clear runtime).</summary>
    public GcMonitor Gc { get; }

    public RouterState State => _s;

    public void Dispose()
    {
        Capture.Dispose();
        Gc.Dispose();
        Classify.Dispose();
    }

    /// <summary>The declarative configuration commands (null: lcpd runs without the config layer).</summary>
    public ConfigCommands? Config { get; set; }

    /// <summary>Runs one command line. Throws <see cref="ApiException"/> for bad requests.</summary>
    public JsonNode? Execute(IReadOnlyList<string> argv) => Execute(argv, null, "cli");

    /// <summary>Runs one command with its input document (config commands), on behalf of a source
    /// (cli, rest, grpc: what the config history records).</summary>
    public JsonNode? Execute(IReadOnlyList<string> argv, string? input, string source)
    {
        object? result = Run(argv, input, source);
        return result as JsonNode ?? JsonSerializer.SerializeToNode(result, result?.GetType() ?? typeof(object), Protocol.Json);
    }

    /// <summary>Runs one command and returns its result object (a DTO, or a JSON node for the
    /// config commands), for a caller that serialises it straight into its reply
    /// (<see cref="Protocol.WriteOk"/>) instead of through a JSON node tree.</summary>
    public object? Run(IReadOnlyList<string> argv, string? input, string source)
    {
        if (argv.Count == 0)
            throw new ApiException("empty command");
        CommandSpec? spec = CommandCatalog.Match(argv, out string[] rest);
        if (spec is null)
            throw new ApiException($"unknown command '{string.Join(' ', argv)}'");
        if (spec.Words[0] == "config")
            return (Config ?? throw new ApiException("this lcpd runs without the config layer (--no-config)")).Execute(spec, rest, input, source);
        if (input is not null)
            throw new ApiException($"{spec.Path} takes no input document");
        object? result = spec.Path switch
        {
            "show version" => NoArgs(spec, rest, ShowVersion),
            "doctor" => NoArgs(spec, rest, RunDoctor),
            "show interfaces" => NoArgs(spec, rest, ShowInterfaces),
            "show lcp" => NoArgs(spec, rest, Routing.ShowLcp),
            "set interface state" => Interfaces.SetState(spec, rest),
            "set interface mtu" => Interfaces.SetMtu(spec, rest),
            "attach" => Interfaces.Attach(spec, rest),
            "show bond" => NoArgs(spec, rest, Interfaces.ShowBonds),
            "detach" => Interfaces.Detach(spec, rest),
            "show errors" => NoArgs(spec, rest, ShowErrors),
            "show buffers" => NoArgs(spec, rest, ShowBuffers),
            "clear errors" => NoArgs(spec, rest, ClearErrors),
            "show runtime" => NoArgs(spec, rest, ShowRuntime),
            "clear runtime" => NoArgs(spec, rest, ClearRuntime),
            "show latency" => NoArgs(spec, rest, ShowLatency),
            "trace add" => TraceAdd(spec, rest),
            "show trace" => NoArgs(spec, rest, ShowTrace),
            "clear trace" => NoArgs(spec, rest, ClearTrace),
            "capture start" => CaptureStart(spec, rest),
            "capture stop" => NoArgs(spec, rest, Capture.Stop),
            "show capture" => NoArgs(spec, rest, Capture.Status),
            "show dpdk" => NoArgs(spec, rest, ShowDpdk),
            "show memory" => NoArgs(spec, rest, ShowMemory),
            "show log-level" => NoArgs(spec, rest, () => new LogLevelDto(LogSwitch.Name(LogSwitch.Level))),
            "set log-level" => SetLogLevel(spec, rest),
            "show ip fib" => ShowFib(spec, false, rest),
            "show ip6 fib" => ShowFib(spec, true, rest),
            "show ip fib summary" => NoArgs(spec, rest, Routing.ShowFibSummary),
            "show ip neighbors" => NoArgs(spec, rest, Routing.ShowNeighbors),
            "lcp resync" => NoArgs(spec, rest, Routing.Resync),
            "lcp verify" => LcpVerify(spec, rest),
            "lcp create" => LcpCreate(spec, rest),
            "lcp delete" => LcpDelete(spec, rest),
            "debug fib-drop" => DebugFibDrop(spec, rest),
            "classify add rule" => Classify.Add(rest),
            "classify del rule" => Classify.Delete(spec, rest),
            "show classify" => Classify.Show(spec, rest),
            "clear classify" => NoArgs(spec, rest, Classify.Clear),
            "show punt policers" => Punt.Show(spec, rest),
            "flow enable" => Flows.Enable(spec, rest, true),
            "flow disable" => Flows.Enable(spec, rest, false),
            "show flows" => Flows.Show(spec, rest),
            "show flow summary" => NoArgs(spec, rest, Flows.Summary),
            "clear flows" => NoArgs(spec, rest, Flows.Clear),
            "set flow timeouts" => Flows.SetTimeouts(spec, rest),
            "set flow full-policy" => Flows.SetFullPolicy(spec, rest),
            "set punt policer" => Punt.Set(spec, rest),
            _ => throw new ApiException($"command '{spec.Path}' is not implemented by this lcpd"),
        };
        return result;
    }

    private static object NoArgs(CommandSpec spec, string[] rest, Func<object> f)
    {
        if (rest.Length != 0)
            throw new ApiException($"unexpected argument '{rest[0]}'; usage: {spec.Usage}");
        return f();
    }

    /// <summary>The host checklist with what this daemon knows added (worker CPUs, mirrors, GC, JIT).</summary>
    public Doctor.DoctorDto RunDoctor() => Doctor.Checklist.Run(_s.Pairs.Host, null, DaemonFacts());

    private Doctor.DaemonFacts DaemonFacts()
    {
        var cpus = new SortedSet<int>();
        foreach (var w in _s.Engine.Workers)
        {
            ulong bits = Eal.LcoreCpus(w.Lcore);
            for (int c = 0; c < 64; c++)
                if ((bits >> c & 1) != 0)
                    cpus.Add(c);
        }
        List<Doctor.MirrorFacts>? mirrors = null;
        if (_s.Routing is { } routing)
        {
            mirrors = [];
            lock (routing.Lock)
            {
                foreach (Pair p in _s.Pairs.Pairs().Where(p => p.State == PairState.Up))
                {
                    var ns = routing.Namespaces.FirstOrDefault(n => n.Netns == p.Netns);
                    var v6 = ns is null ? [] : ns.Addresses.Of(p.HostIfIndex).Where(a => a.V6).ToList();
                    string? kif = PairManager.KernelInterface(p.Phy);
                    bool sameMac = false;
                    if (kif is not null)
                    {
                        try
                        {
                            sameMac = LinuxCp.ControlPlane.Netlink.LinkQuery.Get(null, kif)?.Mac is MacAddress km && km == p.Mirror.Mac;
                        }
                        catch (Exception e) when (e is IOException or DpdkException)
                        {
                            sameMac = false;
                        }
                    }
                    mirrors.Add(new Doctor.MirrorFacts(p.HostIf, p.Netns, p.Tun,
                        [.. v6.Where(a => (a.Flags & LinuxCp.ControlPlane.Sync.AddressHandler.DadFailedFlag) != 0).Select(a => LinuxCp.Dataplane.Fib.Prefix.Format(true, a.Address))],
                        v6.Any(a => (a.Address >> 118) == 0x3FA), kif, kif is null ? null : _s.Pairs.Host.Ipv6Enabled(kif), sameMac));
                }
            }
        }
        static string? Data(string name) => AppContext.GetData(name)?.ToString();
        string? tieredEnv = Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") ?? Environment.GetEnvironmentVariable("COMPlus_TieredCompilation");
        bool? tiered = tieredEnv is not null ? tieredEnv != "0"
            : bool.TryParse(Data("System.Runtime.TieredCompilation"), out bool t) ? t : true;
        bool concurrent = !bool.TryParse(Data("System.GC.Concurrent"), out bool cc) || cc;
        string? gen0 = Environment.GetEnvironmentVariable("DOTNET_GCgen0size") ?? Data("System.GC.Gen0Size");
        return new Doctor.DaemonFacts(cpus, mirrors, Netns.InPrivateMountNamespace(), System.Runtime.GCSettings.IsServerGC, concurrent, gen0,
            [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)], tiered, _s.Version);
    }

    public VersionDto ShowVersion() =>
        new(_s.Version, _s.DpdkVersion, System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, Protocol.Version);

    public List<InterfaceDto> ShowInterfaces()
    {
        var list = new List<InterfaceDto>();
        List<Pair> pairs = [.. _s.Pairs.Pairs()];
        foreach (PortInfo p in _s.Pairs.AllPorts())
        {
            // A port's link: the kernel interface's carrier under an af_packet/af_xdp port (those
            // PMDs always say up). Admin state: the mirror's, which a port follows.
            bool up = p.Kind == PortKind.Phy ? LinkSync.PortLink(p, _s.Pairs.Host) : EthPort.Link(p.Id).Up;
            Pair? pair = pairs.FirstOrDefault(x => x.Phy.Id == p.Id || (x.Mirror.Id == p.Id && x.State == PairState.Up));
            var st = EthPort.Stats(p.Id);
            long C(PortCounter c) => _s.Engine.ReadPort(p.Id, c);
            long nicDrops = (long)(st.imissed + st.ierrors + st.rx_nombuf);
            list.Add(new InterfaceDto(
                p.Name, p.Id, p.Kind.ToString().ToLowerInvariant(), p.Mac.ToString(), EthPort.Mtu(p.Id),
                AdminUp: pair?.AdminUp ?? true, LinkUp: up,
                C(PortCounter.RxPackets), C(PortCounter.TxPackets), C(PortCounter.RxBytes), C(PortCounter.TxBytes),
                C(PortCounter.Drops) + nicDrops, C(PortCounter.Punts), C(PortCounter.Forwarded),
                KernelIf: p.Kind == PortKind.Phy ? PairManager.KernelInterface(p) : null, KernelNetns: p.Attached?.Netns));
        }
        // Sub-interfaces: counters of their own (the parent's count their frames too), the
        // parent's link, their mirror's MTU and admin state.
        foreach (PortInfo sub in _s.Pairs.SubInterfaces())
        {
            Pair? pair = pairs.FirstOrDefault(x => x.Phy.Id == sub.Id);
            long C(PortCounter c) => _s.Engine.ReadPort(sub.Id, c);
            int mtu = pair is { State: PairState.Up } ? EthPort.Mtu(pair.Mirror.Id) : EthPort.Mtu(sub.DpdkPort);
            list.Add(new InterfaceDto(
                sub.Name, sub.Id, "sub", sub.Mac.ToString(), mtu, AdminUp: pair?.AdminUp ?? true, LinkUp: LinkSync.PortLink(sub, _s.Pairs.Host),
                C(PortCounter.RxPackets), C(PortCounter.TxPackets), C(PortCounter.RxBytes), C(PortCounter.TxBytes),
                C(PortCounter.Drops), C(PortCounter.Punts), C(PortCounter.Forwarded), EthPort.Name(sub.DpdkPort), sub.Sub!.Tags.ToString()));
        }
        return list;
    }

    private List<FibRouteDto> ShowFib(CommandSpec spec, bool v6, string[] rest)
    {
        var (table, netns, netnsGiven, word) = RoutingCommands.TableArgs(rest, spec.Usage, restAllowed: true);
        LinuxCp.Dataplane.Fib.Prefix? filter = word is null ? null : RoutingCommands.ParsePrefix(word);
        return Routing.ShowFib(v6, netnsGiven ? netns : _s.Pairs.DefaultNetns, table, filter);
    }

    private VerifyDto LcpVerify(CommandSpec spec, string[] rest)
    {
        var (table, netns, netnsGiven, _) = RoutingCommands.TableArgs(rest, spec.Usage, restAllowed: false);
        return Routing.Verify(netnsGiven ? netns : _s.Pairs.DefaultNetns, anyNetns: !netnsGiven && table is null, table);
    }

    private FibRouteDto DebugFibDrop(CommandSpec spec, string[] rest)
    {
        var (table, netns, netnsGiven, word) = RoutingCommands.TableArgs(rest, spec.Usage, restAllowed: true);
        if (word is null)
            throw new ApiException($"usage: {spec.Usage}");
        return Routing.DebugDrop(netnsGiven ? netns : _s.Pairs.DefaultNetns, table, RoutingCommands.ParsePrefix(word));
    }

    public List<ErrorCounterDto> ShowErrors()
    {
        var list = new List<ErrorCounterDto>((int)Reason.Count);
        var workers = _s.Engine.Workers;
        lock (_clearLock)
        {
            for (Reason r = 0; r < Reason.Count; r++)
            {
                var per = new List<long>(workers.Count);
                for (int w = 0; w < workers.Count; w++)
                    per.Add(workers[w].Counters.ReadReason(r) - _reasonBase[w][(int)r]);
                list.Add(new ErrorCounterDto(ReasonInfo.Name(r), ReasonInfo.IsPunt(r) ? "punt" : "drop",
                    Sum(per), ReasonInfo.Description(r), per));
            }
        }
        return list;
    }

    private static long Sum(List<long> values)
    {
        long sum = 0;
        foreach (long v in values)
            sum += v;
        return sum;
    }

    public List<ErrorCounterDto> ClearErrors()
    {
        var workers = _s.Engine.Workers;
        lock (_clearLock)
        {
            for (int w = 0; w < workers.Count; w++)
                for (Reason r = 0; r < Reason.Count; r++)
                    _reasonBase[w][(int)r] = workers[w].Counters.ReadReason(r);
        }
        return ShowErrors();
    }

    public List<BufferDto> ShowBuffers() =>
        [new BufferDto(_s.Pool.Name, _s.Pool.Size, _s.Pool.InUse, _s.Pool.Available)];

    public static string PathName(RuntimePath p) => p switch
    {
        RuntimePath.Rx => "rx",
        RuntimePath.Classify => "classify",
        RuntimePath.Lookup => "lookup",
        RuntimePath.Rewrite => "rewrite",
        RuntimePath.Punt => "punt",
        RuntimePath.Xconnect => "x-connect",
        RuntimePath.Tx => "tx",
        RuntimePath.Acl => "acl",
        RuntimePath.Flow => "flow",
        _ => "drop",
    };

    public static string LatencyName(LatencyPath p) => p switch
    {
        LatencyPath.Forward => "forward",
        LatencyPath.Punt => "punt",
        LatencyPath.Xconnect => "x-connect",
        _ => "loop-gap",
    };

    public List<WorkerDto> ShowRuntime()
    {
        double tscPerUs = Eal.TscHz / 1e6;
        var workers = _s.Engine.Workers;
        var list = new List<WorkerDto>();
        lock (_clearLock)
        {
            for (int wi = 0; wi < workers.Count; wi++)
            {
                var w = workers[wi];
                var paths = new List<RuntimePathDto>((int)RuntimePath.Count);
                for (RuntimePath p = 0; p < RuntimePath.Count; p++)
                {
                    var (calls, packets, sp, sc) = w.Counters.ReadPath(p);
                    calls -= _pathBase[wi][(int)p * 2];
                    packets -= _pathBase[wi][(int)p * 2 + 1];
                    paths.Add(new RuntimePathDto(PathName(p), calls, packets,
                        calls == 0 ? 0 : Math.Round((double)packets / calls, 2),
                        sp == 0 ? null : Math.Round((double)sc / sp, 1)));
                }
                list.Add(new WorkerDto(w.Index, (int)w.Lcore, w.Queue, w.IsRunning, w.IterationCount,
                    Math.Round(w.MaxLoopGapCycles / tscPerUs, 3), w.WarmedUp, w.AllocatedSinceWarmup, w.FailureMessage, paths));
            }
        }
        return list;
    }

    public List<WorkerDto> ClearRuntime()
    {
        var workers = _s.Engine.Workers;
        lock (_clearLock)
        {
            for (int wi = 0; wi < workers.Count; wi++)
            {
                workers[wi].ResetLoopGap();
                for (RuntimePath p = 0; p < RuntimePath.Count; p++)
                {
                    var (calls, packets, _, _) = workers[wi].Counters.ReadPath(p);
                    _pathBase[wi][(int)p * 2] = calls;
                    _pathBase[wi][(int)p * 2 + 1] = packets;
                }
            }
            for (LatencyPath p = 0; p < LatencyPath.Count; p++)
                MergeLatency(p, _latencyBase[(int)p]); // refilled in place: a snapshot is 59 KB
            Gc.Reset(); // the longest GC suspension over the same window as the loop gaps
        }
        return ShowRuntime();
    }

    /// <summary>A path's histogram merged over every worker (since start, no baseline).</summary>
    public HistogramSnapshot MergedLatency(LatencyPath p) => MergeLatency(p, new HistogramSnapshot());

    private HistogramSnapshot MergeLatency(LatencyPath p, HistogramSnapshot into)
    {
        into.Reset();
        foreach (var w in _s.Engine.Workers)
            into.Add(w.Counters.Latency(p));
        return into;
    }

    public List<LatencyDto> ShowLatency()
    {
        double usPerTick = 1e6 / Eal.TscHz;
        double Us(double ticks) => Math.Round(ticks * usPerTick, 3);
        var list = new List<LatencyDto>();
        lock (_clearLock)
        {
            for (LatencyPath p = 0; p < LatencyPath.Count; p++)
            {
                HistogramSnapshot h = MergeLatency(p, _latencyScratch);
                h.Subtract(_latencyBase[(int)p]);
                list.Add(new LatencyDto(LatencyName(p), h.Count, Us(h.Percentile(50)), Us(h.Percentile(90)), Us(h.Percentile(99)),
                    Us(h.Percentile(99.9)), Us(h.Max), Us(h.Mean),
                    h.CountAbove((ulong)(Eal.TscHz / 10_000)), h.CountAbove((ulong)(Eal.TscHz / 1000))));
            }
        }
        return list;
    }

    private (ushort Id, string Name) ResolvePort(string name)
    {
        foreach (PortInfo p in _s.Pairs.AllPorts())
            if (p.Name == name || p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) == name)
                return (p.Id, p.Name);
        foreach (Pair p in _s.Pairs.Pairs())
            if (p.HostIf == name)
                return (p.Mirror.Id, p.Mirror.Name);
        throw new ApiException($"unknown port '{name}' (see show interfaces)");
    }

    private TraceStatusDto TraceAdd(CommandSpec spec, string[] a)
    {
        if (a.Length is not (1 or 3) || (a.Length == 3 && a[1] != "port"))
            throw new ApiException($"usage: {spec.Usage}");
        if (!int.TryParse(a[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) || n <= 0)
            throw new ApiException($"bad packet count '{a[0]}': a positive number, at most {TraceBuffer.DefaultCapacity}");
        string? portName = null;
        int port = -1;
        if (a.Length == 3)
            (port, portName) = ResolvePort(a[2]);
        int armed = _s.Engine.TraceAdd(Math.Min(n, TraceBuffer.DefaultCapacity), port);
        if (armed == 0)
            throw new ApiException($"the trace buffer is full ({TraceBuffer.DefaultCapacity} packets per worker): clear trace first");
        return new TraceStatusDto(armed, _s.Engine.TracePending, _s.Engine.TraceRecords().Count, portName);
    }

    private TraceStatusDto ClearTrace()
    {
        if (!_s.Engine.TraceClear())
            throw new ApiException("a worker did not pass a quiescent point within 2 s: the trace was disarmed but not cleared (see show runtime); try again");
        return new TraceStatusDto(0, 0, 0, null);
    }

    public List<TracePacketDto> ShowTrace()
    {
        var records = _s.Engine.TraceRecords();
        if (records.Count == 0)
            return [];
        long t0 = records.Min(r => r.Record.Tsc);
        double usPerTick = 1e6 / Eal.TscHz;
        var list = new List<TracePacketDto>(records.Count);
        int index = 0;
        foreach (var (worker, rec) in records.OrderBy(r => r.Record.Tsc))
            list.Add(TraceView(++index, worker, rec, Math.Round((rec.Tsc - t0) * usPerTick, 3)));
        return list;
    }

    private string PortLabel(ushort port) =>
        _s.Pairs.AllPorts().FirstOrDefault(p => p.Id == port)?.Name ?? $"port{port}";

    private unsafe TracePacketDto TraceView(int index, int worker, TraceRecord rec, double timeUs)
    {
        var steps = new List<TraceStepDto>();
        var kind = (LinuxCp.Dataplane.Tables.PollKind)rec.RxKind;
        string rxName = PortLabel(rec.RxPort);
        string kindName = kind switch
        {
            LinuxCp.Dataplane.Tables.PollKind.TapToPhy => "tap mirror",
            LinuxCp.Dataplane.Tables.PollKind.TunToPhy => "tun mirror",
            LinuxCp.Dataplane.Tables.PollKind.PhyUnpaired => "phy, no mirror",
            _ => "phy",
        };
        steps.Add(new("rx", $"{rxName} ({kindName}) {rec.PktLen} bytes, worker {worker}"));
        byte[] before = new ReadOnlySpan<byte>(rec.Before, rec.BeforeLen).ToArray();
        foreach (var (layer, detail) in PacketDecoder.Decode(before, kind == LinuxCp.Dataplane.Tables.PollKind.TunToPhy))
            steps.Add(new(layer, detail));
        var classified = (Reason)rec.Classified;
        if (kind == LinuxCp.Dataplane.Tables.PollKind.TunToPhy)
        {
            if (rec.LookedUp != 0)
                steps.Add(new("classify", $"ip{(rec.BeforeLen > 0 && rec.Before[0] >> 4 == 6 ? 6 : 4)} from Linux: adjacency of its next hop"));
        }
        else if (rec.LookedUp != 0)
        {
            string family = classified == Reason.PuntIp6 ? "ip6" : "ip4";
            steps.Add(new("classify", (rec.Passes & (TracePasses.FastIp4 | TracePasses.FastIp6)) != 0
                ? $"{family} fast pass: plain unicast to the port, forwarding candidate"
                : $"{family} unicast to us: forwarding candidate"));
        }
        else if (classified != Reason.None)
        {
            steps.Add(new("classify", ReasonInfo.Name(classified)));
        }
        if (rec.LookedUp != 0)
        {
            var (gk, buckets) = _s.Engine.DescribeGroup(rec.NextHop);
            steps.Add(new("fib-lookup", $"next-hop group {rec.NextHop}: {RoutingCommands.TypeName(gk)}" + (buckets > 0 ? $", {buckets} bucket(s)" : "")
                + ((rec.Passes & TracePasses.SinglePath) != 0 ? " (single-path pass)" : "")));
        }
        // The headers as sent (forwarded, x-connected, or dropped on output after the rewrite).
        byte[] after = new ReadOnlySpan<byte>(rec.After, rec.AfterLen).ToArray();
        void AddRewrite()
        {
            if (after.Length > 0)
                foreach (var (layer, detail) in PacketDecoder.Decode(after))
                    steps.Add(new("rewrite", $"{layer} {detail}"));
        }

        string? reason = null, tx = null;
        string outcome;
        switch (rec.Outcome)
        {
            case TraceOutcome.Forwarded:
            case TraceOutcome.CrossConnected:
                outcome = rec.Outcome == TraceOutcome.Forwarded ? "forwarded" : "x-connect";
                tx = PortLabel(rec.TxPort);
                AddRewrite();
                steps.Add(new("tx", $"{tx}"));
                break;
            case TraceOutcome.Punted:
                outcome = "punted";
                reason = ReasonInfo.Name((Reason)rec.FinalReason);
                tx = PortLabel(rec.TxPort);
                steps.Add(new("punt", $"{reason} -> {tx}"));
                break;
            case TraceOutcome.Dropped:
                outcome = "dropped";
                reason = ReasonInfo.Name((Reason)rec.FinalReason);
                if ((rec.Passes & TracePasses.Output) != 0)
                {
                    // Dropped on its way out: what it would have left as, and where.
                    tx = PortLabel(rec.TxPort);
                    AddRewrite();
                    steps.Add(new("drop", $"{reason} on output of {tx}: {ReasonInfo.Description((Reason)rec.FinalReason)}"));
                }
                else
                {
                    steps.Add(new("drop", $"{reason}: {ReasonInfo.Description((Reason)rec.FinalReason)}"));
                }
                break;
            default:
                outcome = "pending";
                break;
        }
        return new TracePacketDto(index, worker, timeUs, rxName, rec.RxPort, rec.PktLen, outcome, reason, tx, steps);
    }

    private CaptureDto CaptureStart(CommandSpec spec, string[] a)
    {
        string? port = null, file = null;
        int dirs = 3;
        long max = CaptureService.DefaultMax;
        for (int i = 0; i < a.Length; i++)
        {
            switch (a[i])
            {
                case "port" when i + 1 < a.Length: port = a[++i]; break;
                case "file" when i + 1 < a.Length: file = a[++i]; break;
                case "max" when i + 1 < a.Length:
                    if (!long.TryParse(a[++i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out max) || max <= 0)
                        throw new ApiException($"bad max '{a[i]}': a positive packet count");
                    break;
                case "rx": dirs = 1; break;
                case "tx": dirs = 2; break;
                case "both": dirs = 3; break;
                default: throw new ApiException($"unexpected argument '{a[i]}'; usage: {spec.Usage}");
            }
        }
        if (port is null || file is null)
            throw new ApiException($"usage: {spec.Usage}");
        var (id, name) = ResolvePort(port);
        bool rawIp = _s.Pairs.Pairs().Any(p => p.Tun && p.Mirror.Id == id);
        return Capture.Start(id, name, rawIp, dirs, max, file);
    }

    public DpdkDto ShowDpdk()
    {
        var workers = _s.Engine.Workers;
        var lcores = new List<LcoreDto>();
        uint main = Eal.MainLcore;
        var ids = new SortedSet<uint>(workers.Select(w => w.Lcore)) { main };
        foreach (uint l in ids)
        {
            var w = workers.FirstOrDefault(x => x.Lcore == l);
            string role = l == main ? (w is null ? "main" : "main+worker") : "worker";
            lcores.Add(new LcoreDto((int)l, CpuList(Eal.LcoreCpus(l)), role, w?.Index, w?.Queue));
        }
        var ports = _s.Pairs.AllPorts().Select(p => new DpdkPortDto(p.Id, p.Name, EthPort.Driver(p.Id), EthPort.SocketId(p.Id), _s.Engine.WorkerCount)).ToList();
        return new DpdkDto(_s.DpdkVersion, [.. Eal.Arguments], Eal.HasHugepages, (int)main, lcores, ports, ShowBuffers());
    }

    internal static string CpuList(ulong mask)
    {
        var parts = new List<string>();
        for (int c = 0; c < 64; c++)
            if ((mask & (1UL << c)) != 0)
                parts.Add(c.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return string.Join(",", parts);
    }

    public MemoryDto ShowMemory()
    {
        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        var g = Gc.Read();
        var (rss, hpTotal, hpFree, hpSize) = ProcFs.Memory();
        // Control threads are not EAL threads (rte_socket_id() is -1 here): sum every socket.
        (ulong Total, ulong Free, ulong Allocated) heap = (0, 0, 0);
        for (int sock = 0; sock < 8; sock++)
        {
            var h = Eal.HeapStats(sock);
            heap = (heap.Total + h.Total, heap.Free + h.Free, heap.Allocated + h.Allocated);
        }
        // The heap's size as of the last collection; before the first one there is none to
        // describe (GetGCMemoryInfo reads 0), so the bytes allocated so far stand in: an upper
        // bound, garbage included.
        long heapBytes = GC.CollectionCount(0) > 0 ? gc.HeapSizeBytes : GC.GetTotalMemory(false);
        return new MemoryDto(heapBytes, gc.TotalCommittedBytes, GC.GetTotalAllocatedBytes(),
            GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
            Math.Round(GC.GetTotalPauseDuration().TotalMilliseconds, 3), Math.Round(gc.PauseTimePercentage, 4),
            rss, hpTotal, hpFree, hpSize, (long)heap.Total, (long)heap.Free, (long)heap.Allocated,
            g.Suspensions, Math.Round(g.MaxSuspendMs, 3), g.Last, g.ByReason);
    }

    private static LogLevelDto SetLogLevel(CommandSpec spec, string[] a)
    {
        if (a.Length != 1 || !LogSwitch.TryParse(a[0], out var level))
            throw new ApiException($"usage: {spec.Usage}");
        LogSwitch.Level = level;
        return new LogLevelDto(LogSwitch.Name(level));
    }

    private LcpDto LcpCreate(CommandSpec spec, string[] a)
    {
        if (a.Length < 3 || a[1] != "host-if")
            throw new ApiException($"usage: {spec.Usage}");
        string port = a[0], hostIf = a[2];
        string? netns = null;
        bool tun = false, persist = false;
        uint? table = null;
        ushort? tpid = null;
        MirrorKind? kind = null;
        for (int i = 3; i < a.Length; i++)
        {
            switch (a[i])
            {
                case "netns" when i + 1 < a.Length:
                    netns = a[++i];
                    break;
                case "tpid" when i + 1 < a.Length:
                    tpid = RoutingCommands.ParseTpid(a[++i]) ?? throw new ApiException($"tpid '{a[i]}': 88a8 (802.1ad) or 8100 (802.1Q)");
                    break;
                case "table" when i + 1 < a.Length:
                    table = RoutingCommands.TableArgs(["table", a[++i]], spec.Usage, false).Table;
                    break;
                case "tun":
                    tun = true;
                    break;
                case "veth":
                    kind = MirrorKind.VethPacket;
                    break;
                case "veth-xdp":
                    kind = MirrorKind.VethXdp;
                    break;
                case "persist":
                    persist = true;
                    break;
                default:
                    throw new ApiException($"unexpected argument '{a[i]}'; usage: {spec.Usage}");
            }
        }
        if (kind is not null && tun)
            throw new ApiException("a mirror is a TUN or a veth, not both");
        return Routing.Create(port, hostIf, netns, tun, persist, table, tpid, kind);
    }

    private LcpDto LcpDelete(CommandSpec spec, string[] a)
    {
        if (a.Length != 1)
            throw new ApiException($"usage: {spec.Usage}");
        return Routing.Delete(a[0]);
    }
}
