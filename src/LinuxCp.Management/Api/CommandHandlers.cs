using System.Text.Json;
using System.Text.Json.Nodes;
using DpdkSharp;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Counters;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The core of every command. The API socket (and later REST) only parse, call these
/// and format, so every front end answers the same way.</summary>
public sealed class CommandHandlers
{
    private readonly RouterState _s;

    public CommandHandlers(RouterState state) => _s = state;

    /// <summary>Runs one command line. Throws <see cref="ApiException"/> for bad requests.</summary>
    public JsonNode? Execute(IReadOnlyList<string> argv)
    {
        if (argv.Count == 0)
            throw new ApiException("empty command");
        CommandSpec? spec = CommandCatalog.Match(argv, out string[] rest);
        if (spec is null)
            throw new ApiException($"unknown command '{string.Join(' ', argv)}'");
        object? result = spec.Path switch
        {
            "show version" => NoArgs(spec, rest, ShowVersion),
            "show interfaces" => NoArgs(spec, rest, ShowInterfaces),
            "show lcp" => NoArgs(spec, rest, ShowLcp),
            "show errors" => NoArgs(spec, rest, ShowErrors),
            "show buffers" => NoArgs(spec, rest, ShowBuffers),
            "show runtime" => NoArgs(spec, rest, ShowRuntime),
            "clear runtime" => NoArgs(spec, rest, ClearRuntime),
            "show ip fib" => ShowFib(false, rest),
            "show ip6 fib" => ShowFib(true, rest),
            "show ip fib summary" => NoArgs(spec, rest, ShowFibSummary),
            "show ip neighbors" => NoArgs(spec, rest, ShowNeighbors),
            "lcp resync" => NoArgs(spec, rest, Resync),
            "lcp create" => LcpCreate(spec, rest),
            "lcp delete" => LcpDelete(spec, rest),
            _ => throw new ApiException($"command '{spec.Path}' is not implemented by this lcpd"),
        };
        return JsonSerializer.SerializeToNode(result, result?.GetType() ?? typeof(object), Protocol.Json);
    }

    private static object NoArgs(CommandSpec spec, string[] rest, Func<object> f)
    {
        if (rest.Length != 0)
            throw new ApiException($"unexpected argument '{rest[0]}'; usage: {spec.Usage}");
        return f();
    }

    public VersionDto ShowVersion() =>
        new(_s.Version, _s.DpdkVersion, System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, Protocol.Version);

    public List<InterfaceDto> ShowInterfaces()
    {
        var list = new List<InterfaceDto>();
        foreach (PortInfo p in _s.Pairs.AllPorts())
        {
            var (up, _) = EthPort.Link(p.Id);
            var st = EthPort.Stats(p.Id);
            long C(PortCounter c) => _s.Engine.ReadPort(p.Id, c);
            long nicDrops = (long)(st.imissed + st.ierrors + st.rx_nombuf);
            list.Add(new InterfaceDto(
                p.Name, p.Id, p.Kind.ToString().ToLowerInvariant(), p.Mac.ToString(), EthPort.Mtu(p.Id),
                AdminUp: true, LinkUp: up,
                C(PortCounter.RxPackets), C(PortCounter.TxPackets), C(PortCounter.RxBytes), C(PortCounter.TxBytes),
                C(PortCounter.Drops) + nicDrops, C(PortCounter.Punts), C(PortCounter.Forwarded)));
        }
        return list;
    }

    private LinuxCp.ControlPlane.Routing.RoutingService Routing =>
        _s.Routing ?? throw new ApiException("the FIB is disabled (lcpd runs with --no-fib)");

    private string InterfaceName(ushort port) =>
        _s.Pairs.Pairs().FirstOrDefault(p => p.Phy.Id == port)?.HostIf ?? _s.Pairs.AllPorts().FirstOrDefault(p => p.Id == port)?.Name ?? $"port{port}";

    private static string TypeName(LinuxCp.Dataplane.Fib.GroupKind k) => k switch
    {
        LinuxCp.Dataplane.Fib.GroupKind.Forward => "forward",
        LinuxCp.Dataplane.Fib.GroupKind.Local => "local",
        LinuxCp.Dataplane.Fib.GroupKind.Glean => "attached",
        LinuxCp.Dataplane.Fib.GroupKind.Blackhole => "blackhole",
        LinuxCp.Dataplane.Fib.GroupKind.Unreachable => "unreachable",
        LinuxCp.Dataplane.Fib.GroupKind.PuntToLinux => "punt",
        _ => "no-route",
    };

    public List<FibRouteDto> ShowFib(bool v6, string[] rest)
    {
        LinuxCp.Dataplane.Fib.Prefix? filter = null;
        if (rest.Length > 1)
            throw new ApiException($"usage: show {(v6 ? "ip6" : "ip")} fib [<prefix>]");
        if (rest.Length == 1)
        {
            try
            {
                filter = LinuxCp.Dataplane.Fib.Prefix.Parse(rest[0]);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
            {
                throw new ApiException($"bad prefix '{rest[0]}'");
            }
            if (filter.Value.V6 != v6)
                throw new ApiException($"'{rest[0]}' is not an {(v6 ? "IPv6" : "IPv4")} prefix");
        }
        List<LinuxCp.Dataplane.Fib.FibEntry> entries;
        lock (Routing.Lock)
            entries = Routing.Fib.Dump(v6, filter);
        if (filter is not null && filter.Value.Length == (v6 ? 128 : 32) && entries.Count > 1)
            entries = [entries.MaxBy(e => e.Prefix.Length)!]; // an address: its longest match
        return [.. entries.Select(e => new FibRouteDto(e.Prefix.ToString(), TypeName(e.Kind), e.Source.ToString().ToLowerInvariant(),
            [.. e.Paths.Select(p => new FibPathDto(p.Via == 0 && e.Kind != LinuxCp.Dataplane.Fib.GroupKind.Forward ? null
                : LinuxCp.Dataplane.Fib.Prefix.Format(v6, p.Via), InterfaceName(p.Port), p.Resolved))]))];
    }

    public FibSummaryDto ShowFibSummary()
    {
        lock (Routing.Lock)
            return new FibSummaryDto(Routing.Fib.Count4, Routing.Fib.Count6, Routing.Fib.Commits, Routing.Fib.FibErrors);
    }

    public List<NeighborDto> ShowNeighbors()
    {
        lock (Routing.Lock)
            return [.. Routing.Fib.Neighbors().OrderBy(n => n.V6).ThenBy(n => n.Ip)
                .Select(n => new NeighborDto(LinuxCp.Dataplane.Fib.Prefix.Format(n.V6, n.Ip), n.Mac.ToString(), InterfaceName(n.Port)))];
    }

    public ResyncDto Resync()
    {
        int objects = Routing.ResyncAll();
        var ls = Routing.Listeners.ToList();
        return new ResyncDto(objects, ls.Sum(l => Interlocked.Read(ref l.Resyncs)), ls.Sum(l => Interlocked.Read(ref l.Overruns)),
            ls.Sum(l => Interlocked.Read(ref l.Malformed)));
    }

    public List<LcpDto> ShowLcp() =>
        [.. _s.Pairs.Pairs().Select(p => new LcpDto(p.Phy.Name, p.HostIf, p.Netns, p.Tun ? "tun" : "tap", p.HostIfIndex))];

    public List<ErrorCounterDto> ShowErrors()
    {
        var list = new List<ErrorCounterDto>();
        for (Reason r = 0; r < Reason.Count; r++)
            list.Add(new ErrorCounterDto(ReasonInfo.Name(r), ReasonInfo.IsPunt(r) ? "punt" : "drop",
                _s.Engine.ReadReason(r), ReasonInfo.Description(r)));
        return list;
    }

    public List<BufferDto> ShowBuffers() =>
        [new BufferDto(_s.Pool.Name, _s.Pool.Size, _s.Pool.InUse, _s.Pool.Available)];

    public List<WorkerDto> ShowRuntime()
    {
        double tscPerUs = Eal.TscHz / 1e6;
        return [.. _s.Engine.Workers.Select(w => new WorkerDto(
            w.Index, (int)w.Lcore, w.Queue, w.IsRunning, w.IterationCount,
            Math.Round(w.MaxLoopGapCycles / tscPerUs, 3), w.WarmedUp, w.AllocatedSinceWarmup, w.FailureMessage))];
    }

    public List<WorkerDto> ClearRuntime()
    {
        foreach (var w in _s.Engine.Workers)
            w.ResetLoopGap();
        return ShowRuntime();
    }

    private LcpDto LcpCreate(CommandSpec spec, string[] a)
    {
        if (a.Length < 3 || a[1] != "host-if")
            throw new ApiException($"usage: {spec.Usage}");
        string port = a[0], hostIf = a[2];
        string? netns = null;
        bool tun = false, persist = false;
        for (int i = 3; i < a.Length; i++)
        {
            switch (a[i])
            {
                case "netns" when i + 1 < a.Length:
                    netns = a[++i];
                    break;
                case "tun":
                    tun = true;
                    break;
                case "persist":
                    persist = true;
                    break;
                default:
                    throw new ApiException($"unexpected argument '{a[i]}'; usage: {spec.Usage}");
            }
        }
        try
        {
            Pair p = _s.Pairs.Create(port, hostIf, netns, tun, persist);
            return new LcpDto(p.Phy.Name, p.HostIf, p.Netns, p.Tun ? "tun" : "tap", p.HostIfIndex);
        }
        catch (PairException e)
        {
            throw new ApiException(e.Message);
        }
    }

    private LcpDto LcpDelete(CommandSpec spec, string[] a)
    {
        if (a.Length != 1)
            throw new ApiException($"usage: {spec.Usage}");
        try
        {
            Pair p = _s.Pairs.Delete(a[0]);
            return new LcpDto(p.Phy.Name, p.HostIf, p.Netns, p.Tun ? "tun" : "tap", p.HostIfIndex);
        }
        catch (PairException e)
        {
            throw new ApiException(e.Message);
        }
    }
}
