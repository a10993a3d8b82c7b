using System.Diagnostics;
using System.Text;

namespace LinuxCp.TestSupport;

/// <summary>Result of a finished command.</summary>
public sealed record CmdResult(int Code, string Out, string Err)
{
    public override string ToString() => $"exit {Code}\nstdout:\n{Out}\nstderr:\n{Err}";
}

/// <summary>Runs commands with a time limit; never leaves a child behind.</summary>
public static class Cmd
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
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }
        p.WaitForExit();
        lock (stdout)
            lock (stderr)
                return new CmdResult(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static CmdResult Run(string file, params string[] args) => Run(file, args, null);

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
