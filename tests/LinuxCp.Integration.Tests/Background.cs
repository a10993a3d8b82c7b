using System.Diagnostics;
using System.Globalization;
using System.Text;
using LinuxCp.TestSupport;

namespace LinuxCp.Integration.Tests;

/// <summary>A process the test started and alone may signal (an `ip -batch` flood, a pinger,
/// a flapping loop, a routing daemon); killed on dispose if it still runs.</summary>
internal sealed class Background : IDisposable
{
    private readonly Process _p;
    private readonly StringBuilder _out = new();

    public Background(string ns, params string[] argv)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])["netns", "exec", ns, .. argv])
            psi.ArgumentList.Add(a);
        _p = Process.Start(psi)!;
        _p.OutputDataReceived += (_, e) => Append(e.Data);
        _p.ErrorDataReceived += (_, e) => Append(e.Data);
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    private void Append(string? line)
    {
        if (line is not null)
            lock (_out)
                _out.AppendLine(line);
    }

    public string Output
    {
        get
        {
            lock (_out)
                return _out.ToString();
        }
    }

    public int Pid => _p.Id;

    /// <summary>Waits for the process to exit; true once it has and all it printed is in
    /// <see cref="Output"/> (a timed wait alone returns before the output is read to the end).</summary>
    public bool Wait(TimeSpan t)
    {
        if (!_p.WaitForExit(t))
            return false;
        _p.WaitForExit();
        return true;
    }

    public int ExitCode => _p.ExitCode;

    public void Term()
    {
        if (!_p.HasExited)
            Cmd.Run("kill", "-TERM", _p.Id.ToString(CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        if (!_p.HasExited)
        {
            _p.Kill(entireProcessTree: true);
            _p.WaitForExit();
        }
        _p.Dispose();
    }
}
