using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace LinuxCp.TestSupport;

/// <summary>Result of a finished command.</summary>
public sealed record CmdResult(int Code, string Out, string Err)
{
    public override string ToString() => $"exit {Code}\nstdout:\n{Out}\nstderr:\n{Err}";
}

/// <summary>Runs commands with a time limit; never leaves a child behind.</summary>
public static partial class Cmd
{
    public static CmdResult Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
            foreach (var kv in env)
                psi.Environment[kv.Key] = kv.Value;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(60);
        if (!p.WaitForExit(limit))
        {
            // SIGTERM first, so that a script's exit trap removes what it created (namespaces,
            // hugepages, daemons); whatever is still there after the grace period is killed.
            Kill(p.Id, 15);
            if (!p.WaitForExit(TimeSpan.FromSeconds(20)))
                p.Kill(entireProcessTree: true);
            p.WaitForExit();
            lock (stdout)
                lock (stderr)
                    throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {limit.TotalSeconds:0} s; " +
                        $"what it printed:\nstdout:\n{Tail(stdout.ToString(), 60)}\nstderr:\n{Tail(stderr.ToString(), 60)}");
        }
        p.WaitForExit();
        lock (stdout)
            lock (stderr)
                return new CmdResult(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static CmdResult Run(string file, params string[] args) => Run(file, args, null);

    /// <summary>The last <paramref name="lines"/> lines of a text.</summary>
    public static string Tail(string text, int lines)
    {
        string[] all = text.Split('\n');
        return all.Length <= lines ? text : string.Join('\n', all[^lines..]);
    }

    /// <summary>kill(2): a signal to a process.</summary>
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int sig);

    /// <summary>Runs and throws with the output if the exit code is not 0.</summary>
    public static string Ok(string file, params string[] args)
    {
        CmdResult r = Run(file, args);
        if (r.Code != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {r}");
        return r.Out;
    }

    /// <summary>`ip netns exec ns cmd args...`.</summary>
    public static CmdResult InNs(string ns, string file, params string[] args) =>
        Run("ip", ["netns", "exec", ns, file, .. args]);

    public static string InNsOk(string ns, string file, params string[] args) =>
        Ok("ip", ["netns", "exec", ns, file, .. args]);
}
