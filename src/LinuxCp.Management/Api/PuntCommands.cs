using System.Globalization;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.Dataplane.Features;
using LinuxCp.Management.Contracts;

namespace LinuxCp.Management.Api;

/// <summary>The punt policers: show their budgets and counters, change a class's budget.</summary>
public sealed class PuntCommands(RouterState state, Classifier features, long tscHz)
{
    public List<PuntPolicerDto> Show(CommandSpec spec, string[] rest)
    {
        PortInfo? only = null;
        if (rest.Length == 2 && rest[0] == "interface")
            only = state.PhyPort(rest[1]);
        else if (rest.Length != 0)
            throw new ApiException($"usage: {spec.Usage}");
        PuntPolicers pol = features.Current.Policers;
        var ports = only is null ? [.. state.Pairs.AllPorts().Where(p => p.Kind == PortKind.Phy)] : new List<PortInfo> { only };
        var workers = state.Engine.Workers;
        var list = new List<PuntPolicerDto>();
        for (PuntClass c = 0; c < PuntClass.Count; c++)
        {
            long passed = 0, policed = 0;
            foreach (PortInfo p in ports)
                foreach (var w in workers)
                {
                    passed += w.PuntPassed(p.Id, c);
                    policed += w.PuntPoliced(p.Id, c);
                }
            var (rate, burst) = pol.Settings[(int)c];
            list.Add(new PuntPolicerDto(PuntClasses.Name(c), rate > 0 ? rate : null, rate > 0 ? burst : null, passed, policed,
                PuntClasses.Description(c), only?.Name));
        }
        return list;
    }

    /// <summary>set punt policer &lt;class&gt; rate &lt;pps&gt; burst &lt;n&gt; | set punt policer &lt;class&gt; off</summary>
    public List<PuntPolicerDto> Set(CommandSpec spec, string[] rest)
    {
        if (rest.Length == 0)
            throw new ApiException($"usage: {spec.Usage}");
        PuntClass c = PuntClasses.Parse(rest[0]) ?? throw new ApiException(
            $"unknown punt class '{rest[0]}' (one of {string.Join(", ", Enumerable.Range(0, (int)PuntClass.Count).Select(i => PuntClasses.Name((PuntClass)i)))})");
        long rate, burst;
        if (rest.Length == 2 && rest[1] == "off")
        {
            (rate, burst) = (0, 0);
        }
        else if (rest.Length == 5 && rest[1] == "rate" && rest[3] == "burst")
        {
            rate = Number(rest[2], "rate", 1, 100_000_000);
            burst = Number(rest[4], "burst", 1, 10_000_000);
        }
        else
        {
            throw new ApiException($"usage: {spec.Usage}");
        }
        PuntPolicers now = features.Current.Policers;
        features.SetPolicers(now.With(c, rate, burst, tscHz, state.Engine.WorkerCount));
        return Show(spec, []);
    }

    private static long Number(string s, string what, long min, long max) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long v) && v >= min && v <= max
            ? v : throw new ApiException($"{what} '{s}': a whole number from {min} to {max}");
}
