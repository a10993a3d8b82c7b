using System.Globalization;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Features;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The punt policers: show their budgets and counters, change a class's budget.</summary>
public sealed class PuntCommands(RouterState state, Classifier features, long tscHz)
{
    /// <summary>show punt policers [interface &lt;port&gt;]: without a port, each class's budget
    /// with the packets of every port, then the ports with budgets of their own; with one, that
    /// port's budget and packets per class.</summary>
    public List<PuntPolicerDto> Show(CommandSpec spec, string[] rest)
    {
        PortInfo? only = null;
        if (rest.Length == 2 && rest[0] == "interface")
            only = state.PhyPort(rest[1]);
        else if (rest.Length != 0)
            throw new ApiException($"usage: {spec.Usage}");
        PuntPolicers pol = features.Current.Policers;
        var workers = state.Engine.Workers;
        (long Passed, long Policed) Count(int port, PuntClass c)
        {
            long passed = 0, policed = 0;
            foreach (var w in workers)
            {
                passed += w.PuntPassed(port, c);
                policed += w.PuntPoliced(port, c);
            }
            return (passed, policed);
        }
        PuntPolicerDto Row(PuntClass c, (long Rate, long Burst) budget, (long Passed, long Policed) n, string? port) =>
            new(PuntClasses.Name(c), budget.Rate > 0 ? budget.Rate : null, budget.Rate > 0 ? budget.Burst : null, n.Passed, n.Policed,
                PuntClasses.Description(c), port);
        var list = new List<PuntPolicerDto>();
        if (only is not null)
        {
            for (PuntClass c = 0; c < PuntClass.Count; c++)
                list.Add(Row(c, pol.Budget(only.Id, c), Count(only.Id, c), only.Name));
            return list;
        }
        var ports = state.Pairs.AllPorts().Where(p => p.Kind == PortKind.Phy).ToList();
        for (PuntClass c = 0; c < PuntClass.Count; c++)
        {
            long passed = 0, policed = 0;
            foreach (PortInfo p in ports)
            {
                var (a, b) = Count(p.Id, c);
                passed += a;
                policed += b;
            }
            list.Add(Row(c, pol.Settings[(int)c], (passed, policed), null));
        }
        foreach (var ((port, c), budget) in pol.Overrides.OrderBy(o => o.Key.Port).ThenBy(o => o.Key.Class))
            list.Add(Row(c, budget, Count(port, c), ports.FirstOrDefault(p => p.Id == port)?.Name ?? $"port{port}"));
        return list;
    }

    /// <summary>set punt policer &lt;class&gt; [interface &lt;port&gt;] rate &lt;pps&gt; burst &lt;n&gt; | off | default</summary>
    public List<PuntPolicerDto> Set(CommandSpec spec, string[] rest)
    {
        if (rest.Length == 0)
            throw new ApiException($"usage: {spec.Usage}");
        PuntClass c = PuntClasses.Parse(rest[0]) ?? throw new ApiException(
            $"unknown punt class '{rest[0]}' (one of {string.Join(", ", Enumerable.Range(0, (int)PuntClass.Count).Select(i => PuntClasses.Name((PuntClass)i)))})");
        PortInfo? port = null;
        string[] budget = rest[1..];
        if (budget.Length >= 2 && budget[0] == "interface")
        {
            port = state.PhyPort(budget[1]);
            budget = budget[2..];
        }
        (long Rate, long Burst)? value;
        if (budget is ["off"])
            value = (0, 0);
        else if (budget is ["default"])
            value = port is null ? throw new ApiException("'default' takes a port back to the class's budget: set punt policer <class> interface <port> default") : null;
        else if (budget is ["rate", var r, "burst", var b])
            value = (Number(r, "rate", 1, 100_000_000), Number(b, "burst", 1, 10_000_000));
        else
            throw new ApiException($"usage: {spec.Usage}");
        PuntPolicers now = features.Current.Policers;
        if (port is null)
            features.SetPolicers(now.With(c, value!.Value.Rate, value.Value.Burst, tscHz, state.Engine.WorkerCount));
        else
            features.SetPolicers(now.WithPort(port.Id, c, value));
        return Show(spec, port is null ? [] : ["interface", port.Name]);
    }

    private static long Number(string s, string what, long min, long max) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long v) && v >= min && v <= max
            ? v : throw new ApiException($"{what} '{s}': a whole number from {min} to {max}");
}
