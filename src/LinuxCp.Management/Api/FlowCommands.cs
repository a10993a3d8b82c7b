using System.Globalization;
using System.Net;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Features;
using LinuxCp.Dataplane.Lcore;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The flow tracker's commands: enable/disable per port, timeouts, full policy, show
/// flows and the summary, clear. The tables (one per worker, <c>--flow-table</c> entries each)
/// are allocated the first time something needs them and kept until lcpd stops.</summary>
public sealed class FlowCommands(RouterState state, Func<Classifier> features, int capacity)
{
    private readonly object _lock = new();

    /// <summary>Gives every worker its flow table (the Classifier calls this before publishing
    /// anything that uses one).</summary>
    public void EnsureTables()
    {
        lock (_lock)
        {
            long tscHz = (long)DpdkSharp.Eal.TscHz;
            long epoch = (long)DpdkSharp.Eal.Rdtsc();
            foreach (WorkerContext w in state.Engine.Workers)
            {
                if (w.FlowTable is not null)
                    continue;
                FlowTable t;
                try
                {
                    t = new FlowTable(capacity);
                }
                catch (OutOfMemoryException)
                {
                    throw new ClassifierException($"cannot allocate a flow table of {capacity} flows ({(long)capacity * FlowTable.BytesPerFlow >> 20} MiB per worker); give a smaller --flow-table");
                }
                w.AttachFlows(t, epoch, Math.Max(1, tscHz / 1000));
            }
        }
    }

    private PortInfo Port(string name) => state.PhyPort(name);

    public FlowSummaryDto Enable(CommandSpec spec, string[] rest, bool on)
    {
        if (rest.Length != 1)
            throw new ApiException($"usage: {spec.Usage}");
        try
        {
            features().SetTracked(Port(rest[0]).Id, on);
        }
        catch (ClassifierException e)
        {
            throw new ApiException(e.Message);
        }
        return Summary();
    }

    public FlowSummaryDto SetTimeouts(CommandSpec spec, string[] rest)
    {
        if (rest.Length == 0 || rest.Length % 2 != 0)
            throw new ApiException($"usage: {spec.Usage}");
        FlowTimeouts t = features().Current.Flows.Timeouts;
        for (int i = 0; i < rest.Length; i += 2)
        {
            if (!uint.TryParse(rest[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out uint v) || v < 1 || v > 2_000_000)
                throw new ApiException($"{rest[i]} '{rest[i + 1]}': seconds from 1 to 2000000");
            t = rest[i] switch
            {
                "tcp-established" => t with { TcpEstablished = v },
                "tcp-transitory" => t with { TcpTransitory = v },
                "udp" => t with { Udp = v },
                "icmp" => t with { Icmp = v },
                "other" => t with { Other = v },
                _ => throw new ApiException($"unknown timeout '{rest[i]}' (tcp-established, tcp-transitory, udp, icmp, other)"),
            };
        }
        features().SetFlowTimeouts(t);
        return Summary();
    }

    public FlowSummaryDto SetFullPolicy(CommandSpec spec, string[] rest)
    {
        FlowFullPolicy p = rest is ["drop"] ? FlowFullPolicy.Drop : rest is ["pass"] ? FlowFullPolicy.Pass
            : throw new ApiException($"usage: {spec.Usage}");
        features().SetFullPolicy(p);
        return Summary();
    }

    public FlowSummaryDto Summary()
    {
        FeatureSnapshot f = features().Current;
        var states = new long[(int)FlowState.Count];
        long count = 0, inserts = 0, expiries = 0, full = 0, capacityNow = 0;
        foreach (WorkerContext w in state.Engine.Workers)
        {
            if (w.FlowTable is not { } t)
                continue;
            count += t.Count;
            inserts += t.Inserts;
            expiries += t.Expiries;
            full += t.TableFull;
            capacityNow += t.Capacity;
            for (int s = 0; s < states.Length; s++)
                states[s] += t.InState((FlowState)s);
        }
        var tracked = state.Pairs.AllPorts().Where(p => p.Kind == PortKind.Phy && f.Flows.Tracked[p.Id]).Select(p => p.Name).ToList();
        FlowTimeouts to = f.Flows.Timeouts;
        return new FlowSummaryDto(count, states[(int)FlowState.New], states[(int)FlowState.Established], states[(int)FlowState.FinWait],
            states[(int)FlowState.Closed], inserts, expiries, full, capacityNow, FlowTable.BytesPerFlow, tracked,
            f.Flows.FullPolicy == FlowFullPolicy.Drop ? "drop" : "pass",
            new FlowTimeoutsDto(to.TcpEstablished, to.TcpTransitory, to.Udp, to.Icmp, to.Other));
    }

    public unsafe List<FlowDto> Show(CommandSpec spec, string[] rest)
    {
        int max = 100;
        PortInfo? only = null;
        for (int i = 0; i < rest.Length; i += 2)
        {
            if (i + 1 >= rest.Length)
                throw new ApiException($"usage: {spec.Usage}");
            if (rest[i] == "interface")
                only = Port(rest[i + 1]);
            else if (rest[i] == "max" && int.TryParse(rest[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int m) && m > 0)
                max = m;
            else
                throw new ApiException($"usage: {spec.Usage}");
        }
        var names = state.Pairs.AllPorts().ToDictionary(p => p.Id, p => p.Name);
        var list = new List<FlowDto>();
        var workers = state.Engine.Workers;
        for (int wi = 0; wi < workers.Count && list.Count < max; wi++)
        {
            if (workers[wi].FlowTable is not { } t)
                continue;
            uint now = workers[wi].FlowClockMs;
            for (int i = 0; i < t.Slots && list.Count < max; i++)
            {
                FlowEntry e = *t.At(i); // a copy: the worker may change the entry meanwhile
                if ((e.Flags & FlowEntry.Used) == 0 || (only is not null && e.Zone != only.Id))
                    continue;
                bool v6 = (e.Flags & FlowEntry.V6) != 0;
                string lo = Address(e.Lo, v6), hi = Address(e.Hi, v6);
                bool origLo = (e.Flags & FlowEntry.OrigIsLo) != 0;
                list.Add(new FlowDto(wi, names.GetValueOrDefault(e.Zone, e.Zone.ToString(CultureInfo.InvariantCulture)), Proto(e.Proto),
                    origLo ? lo : hi, origLo ? e.LoPort : e.HiPort, origLo ? hi : lo, origLo ? e.HiPort : e.LoPort,
                    StateName(e.State), e.Packets, e.Bytes, (now - e.First) / 1000.0, (now - e.Last) / 1000.0, (e.Flags & FlowEntry.Reflected) != 0));
            }
        }
        return list;
    }

    public FlowSummaryDto Clear()
    {
        foreach (WorkerContext w in state.Engine.Workers)
            if (!w.ClearFlows(TimeSpan.FromSeconds(2)))
                throw new ApiException($"worker {w.Index} did not clear its flow table in time");
        return Summary();
    }

    private static unsafe string Address(byte* a, bool v6) => new IPAddress(new ReadOnlySpan<byte>(a, v6 ? 16 : 4)).ToString();

    private static string Proto(byte p) => p switch { 6 => "tcp", 17 => "udp", 1 => "icmp", 58 => "icmp6", _ => p.ToString(CultureInfo.InvariantCulture) };

    public static string StateName(FlowState s) => s switch
    {
        FlowState.New => "new",
        FlowState.Established => "established",
        FlowState.FinWait => "fin-wait",
        _ => "closed",
    };
}
