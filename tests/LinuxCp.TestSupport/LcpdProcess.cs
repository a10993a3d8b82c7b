using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace LinuxCp.TestSupport;

/// <summary>A real lcpd started by a test (inside the topology's dataplane namespace). Only this
/// PID is ever signalled; dispose stops it (SIGTERM, then SIGKILL) if the test did not.</summary>
public sealed class LcpdProcess : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _output = new();

    public string Socket { get; }
    public string FilePrefix { get; }
    public int Pid => _p.Id;

    private readonly List<string> _eal;

    private LcpdProcess(Process p, string socket, string prefix, List<string> eal)
    {
        _p = p;
        Socket = socket;
        FilePrefix = prefix;
        _eal = eal;
    }

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>Default EAL arguments for tests: no hugepages, no PCI, a worker lcore on the last CPU.</summary>
    public static List<string> TestEal(string prefix)
    {
        int worker = Environment.ProcessorCount > 1 ? 1 : 0;
        return ["--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix, "--lcores", $"0@0,1@{worker}", "--log-level", "lib.eal:warning"];
    }

    /// <summary>FIB sizes that fit the test EAL memory (no hugepages).</summary>
    public static readonly string[] TestFib = ["--fib-routes", "131072", "--fib6-routes", "65536", "--fib-tbl8", "4096"];

    /// <summary>Starts lcpd with the given EAL and lcpd arguments (an --api-socket is added) in
    /// namespace <paramref name="netns"/> (null: the test's own). Does not wait for start-up.</summary>
    public static LcpdProcess Launch(string? netns, IEnumerable<string> eal, IEnumerable<string> lcpdArgs, string? socket = null)
    {
        string id = Repo.UniqueId();
        socket ??= $"/run/lcpt-{id}.sock";
        var psi = new ProcessStartInfo(netns is null ? Repo.Lcpd : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (netns is not null)
        {
            psi.ArgumentList.Add("netns");
            psi.ArgumentList.Add("exec");
            psi.ArgumentList.Add(netns);
            psi.ArgumentList.Add(Repo.Lcpd);
        }
        var ealList = eal.ToList();
        foreach (string a in ealList)
            psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--");
        psi.ArgumentList.Add("--api-socket");
        psi.ArgumentList.Add(socket);
        var args = lcpdArgs.ToList();
        // Tests never share (or leave) the config layer's state file.
        if (!args.Contains("--config-state-dir"))
            args.Add("--no-config-state");
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var l = new LcpdProcess(p, socket, id, ealList);
        p.OutputDataReceived += (_, e) => l.Append(e.Data);
        p.ErrorDataReceived += (_, e) => l.Append(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return l;
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    /// <summary>lcpd as the router of <paramref name="topo"/>: a port per host, each paired with
    /// its mirror in the router namespace; Linux there routes, with each host's subnet on its
    /// mirror (up). <paramref name="extra"/>: more lcpd options.</summary>
    public static LcpdProcess StartRouter(Topology topo, params string[] extra)
    {
        var eal = TestEal($"lcpr{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        var args = new List<string>(TestFib) { "--netns", topo.Rt };
        foreach (TestHost h in topo.Hosts)
            args.AddRange(["--pair", $"{h.PortName}={h.MirrorName}"]);
        args.AddRange(extra);
        LcpdProcess l = Start(topo.Dp, eal, args);
        try
        {
            topo.EnableRouting();
            foreach (TestHost h in topo.Hosts)
                topo.ConfigureRouterInterface(h);
            return l;
        }
        catch
        {
            l.Dispose();
            throw;
        }
    }

    /// <summary>Starts lcpd and waits until its API answers (disposed, and the error thrown, if it does not).</summary>
    public static LcpdProcess Start(string? netns, IEnumerable<string> eal, IEnumerable<string> lcpdArgs, string? socket = null)
    {
        LcpdProcess l = Launch(netns, eal, lcpdArgs, socket);
        try
        {
            l.WaitReady(TimeSpan.FromSeconds(60));
            return l;
        }
        catch
        {
            l.Dispose();
            throw;
        }
    }

    public void WaitReady(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (_p.HasExited)
                throw new InvalidOperationException($"lcpd exited with {_p.ExitCode} during start-up:\n{Output}");
            if (File.Exists(Socket) && Ctl("show", "version").Code == 0)
                return;
            Thread.Sleep(100);
        }
        throw new TimeoutException($"lcpd did not become ready:\n{Output}");
    }

    public bool HasExited => _p.HasExited;

    /// <summary>Waits for exit; returns the exit code, or null on timeout.</summary>
    public int? WaitExit(TimeSpan timeout)
    {
        if (!_p.WaitForExit(timeout))
            return null;
        _p.WaitForExit(); // flush output
        return _p.ExitCode;
    }

    public CmdResult Ctl(params string[] args) => Cmd.Run(Repo.Lcpctl, ["--socket", Socket, .. args], TimeSpan.FromSeconds(60));

    /// <summary>Runs lcpctl with --json; throws with the output on failure.</summary>
    public JsonNode CtlJson(params string[] args)
    {
        CmdResult r = Ctl([.. args, "--json"]);
        if (r.Code != 0)
            throw new InvalidOperationException($"lcpctl {string.Join(' ', args)}: {r}\nlcpd output:\n{Output}");
        return JsonNode.Parse(r.Out)!;
    }

    public void Signal(int sig)
    {
        if (!_p.HasExited)
            Cmd.Kill(_p.Id, sig);
    }

    public const int SIGTERM = 15;
    public const int SIGINT = 2;

    private bool _disposed;

    /// <summary>Idempotent: a test that restarts lcpd in a loop may dispose the same one twice on failure.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (!_p.HasExited)
        {
            Signal(SIGTERM);
            if (!_p.WaitForExit(TimeSpan.FromSeconds(10)))
                _p.Kill();
            _p.WaitForExit();
        }
        // LCPD_TEST_LOGS=<dir>: keep what each lcpd printed, to read after a failure.
        if (Environment.GetEnvironmentVariable("LCPD_TEST_LOGS") is { Length: > 0 } dir)
            File.WriteAllText(Path.Combine(dir, $"lcpd-{_p.Id}.log"), Output);
        _p.Dispose();
        Repo.CleanEalRuntime(_eal);
        // lcpd removes its sockets when it stops; one killed (restart tests) leaves them.
        foreach (string path in new[] { Socket, Socket + ".http", Socket + ".grpc" })
        {
            try
            {
                File.Delete(path);
            }
            catch (IOException)
            {
            }
        }
    }
}
