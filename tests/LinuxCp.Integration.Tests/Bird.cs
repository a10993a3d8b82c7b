using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>A BIRD daemon a test runs in one of its namespaces (config, control socket and pid
/// file in the test's directory), stopped on dispose.</summary>
internal sealed class Bird : IDisposable
{
    private readonly Background _p;

    public string Ns { get; }
    public string ControlSocket { get; }

    public Bird(string ns, string dir, string name, string config)
    {
        Ns = ns;
        string conf = Path.Combine(dir, $"{name}.conf");
        ControlSocket = Path.Combine(dir, $"{name}.ctl");
        File.WriteAllText(conf, config);
        _p = new Background(ns, "bird", "-f", "-c", conf, "-s", ControlSocket, "-P", Path.Combine(dir, $"{name}.pid"));
    }

    public string Output => _p.Output;

    /// <summary>A BGP session <c>peer1</c> from <paramref name="local"/> to <paramref name="peer"/>
    /// (keepalive 1 s, reconnect after 1 s); <paramref name="exportRoute"/>: a static route it
    /// announces; <paramref name="kernel"/>: install what it learns in the kernel's main table;
    /// <paramref name="extraBgp"/>: more lines for the session (e.g. its hold time).</summary>
    public static string BgpConf(string routerId, string local, string peer, int localAs, int peerAs, string? exportRoute,
        bool kernel = false, string extraBgp = "hold time 3;") => $$"""
        router id {{routerId}};
        protocol device { scan time 1; }
        {{(exportRoute is null ? "" : $"protocol static {{ ipv4; route {exportRoute} blackhole; }}")}}
        {{(kernel ? "protocol kernel { ipv4 { import none; export all; }; }" : "")}}
        protocol bgp peer1 {
          local {{local}} as {{localAs}};
          neighbor {{peer}} as {{peerAs}};
          {{extraBgp}} keepalive time 1; connect retry time 1; error wait time 1, 2;
          ipv4 { import all; export {{(exportRoute is null ? "none" : "all")}}; };
        }
        """;

    public CmdResult Ctl(params string[] args) => Cmd.InNs(Ns, "birdc", ["-s", ControlSocket, .. args]);

    /// <summary>The session's state and since-time as <c>birdc show protocols</c> gives them.</summary>
    public (bool Established, string Since) Session(string protocol = "peer1")
    {
        string? line = Ctl("show", "protocols", protocol).Out.Split('\n').FirstOrDefault(l => l.StartsWith(protocol, StringComparison.Ordinal));
        if (line is null)
            return (false, "");
        string[] w = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // name proto table state since [since-time] info
        return (line.Contains("Established", StringComparison.Ordinal), w.Length > 5 ? $"{w[4]} {w[5]}" : w.ElementAtOrDefault(4) ?? "");
    }

    /// <summary>Whether two since-times of <see cref="Session"/> name the same session. BIRD keeps
    /// them on its monotonic clock and converts to wall-clock time each time it prints, so one
    /// moment can print a millisecond apart; a reset session is back after its retry time (1 s)
    /// at the earliest.</summary>
    public static bool SameSession(string since, string other)
    {
        static TimeSpan? Parse(string s) => TimeSpan.TryParse(s.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture, out TimeSpan t) ? t : null;
        if (since == other)
            return true;
        return Parse(since) is TimeSpan a && Parse(other) is TimeSpan b && (a - b).Duration() <= TimeSpan.FromMilliseconds(100);
    }

    /// <summary>Whether BIRD's table holds <paramref name="prefix"/>.</summary>
    public bool HasRoute(string prefix) => Ctl("show", "route", prefix).Out.Contains(prefix, StringComparison.Ordinal);

    public void Dispose() => _p.Dispose();
}
