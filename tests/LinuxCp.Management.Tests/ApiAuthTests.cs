using LinuxCp.Management.Config;
using LinuxCp.Management.Rest;
using Xunit;

namespace LinuxCp.Management.Tests;

/// <summary>Token files and the launch-line rules of the TCP listener.</summary>
public sealed class ApiAuthTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lcptok").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string text, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        string f = Path.Combine(_dir, $"t{Guid.NewGuid():N}");
        File.WriteAllText(f, text);
        File.SetUnixFileMode(f, mode);
        return f;
    }

    [Fact]
    public void TokenFile_Loads_AndFindsByToken()
    {
        var t = new TokenFile(Write("# comment\n\nabcdefghijklmnop0 rw ops\nqrstuvwxyz0123456 ro grafana # trailing\n"));
        Assert.Equal(2, t.Count);
        Assert.Equal(new ApiCredential("ops", true), t.Find("abcdefghijklmnop0"));
        Assert.Equal(new ApiCredential("grafana", false), t.Find("qrstuvwxyz0123456"));
        Assert.Null(t.Find("abcdefghijklmnop"));
        Assert.Null(t.Find(""));
    }

    [Theory]
    [InlineData("short rw a\n", "shorter than 16")]
    [InlineData("abcdefghijklmnop0 admin a\n", "is not ro or rw")]
    [InlineData("abcdefghijklmnop0 rw\n", "expected '<token> <ro|rw> <name>'")]
    [InlineData("abcdefghijklmnop0 rw a\nabcdefghijklmnop1 ro a\n", "name 'a' used twice")]
    [InlineData("abcdefghijklmnop0 rw a\nabcdefghijklmnop0 ro b\n", "the same token twice")]
    public void TokenFile_Bad_RefusedWithLine(string text, string reason)
    {
        var e = Assert.Throws<FormatException>(() => new TokenFile(Write(text)));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains(":", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenFile_ReadableByOthers_Refused()
    {
        string f = Write("abcdefghijklmnop0 rw ops\n", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        Assert.Contains("chmod 600", Assert.Throws<FormatException>(() => new TokenFile(f)).Message, StringComparison.Ordinal);
        Assert.Contains("missing", Assert.Throws<FormatException>(() => new TokenFile(Path.Combine(_dir, "missing"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenFile_ChangedToSomethingInvalid_KeepsTheOldTokensAndSaysSo()
    {
        string f = Write("abcdefghijklmnop0 rw ops\n");
        var problems = new List<string>();
        var t = new TokenFile(f) { Invalid = problems.Add };
        File.WriteAllText(f, "garbage\n");
        File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddSeconds(10));
        Thread.Sleep(1100); // checked at most once a second
        Assert.NotNull(t.Find("abcdefghijklmnop0"));
        Assert.Single(problems);
        Assert.Contains("previous tokens stay", problems[0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--http", "10.1.1.1:8080", "--api-token-file", "/x" }, "needs TLS")]
    [InlineData(new[] { "--http", "127.0.0.1:8080" }, "needs a way to admit clients")]
    [InlineData(new[] { "--http", "127.0.0.1:8080", "--http-tls-cert", "c.pem", "--http-public-reads" }, "go together")]
    [InlineData(new[] { "--http", "127.0.0.1:8080", "--http-client-ca", "ca.pem" }, "needs TLS")]
    [InlineData(new[] { "--api-token-file", "/x" }, "apply to --http and --grpc, and neither is given")]
    [InlineData(new[] { "--grpc", "10.0.0.1:9111", "--api-token-file", "/x" }, "--grpc 10.0.0.1:9111: not a loopback address, so it needs TLS")]
    [InlineData(new[] { "--grpc", "127.0.0.1:9111" }, "--grpc needs a way to admit clients")]
    public void HttpSecurity_LaunchLineRules(string[] opts, string reason)
    {
        var e = Assert.Throws<UsageException>(() => LaunchOptions.Parse(["--", .. opts]));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HttpSecurity_NonLoopbackWithTls_Accepted()
    {
        LaunchOptions o = LaunchOptions.Parse(["--", "--http", "0.0.0.0:8443", "--http-tls-cert", "c.pem", "--http-tls-key", "k.pem", "--http-client-ca", "ca.pem"]);
        Assert.True(o.HttpSecurity.Tls);
        Assert.Equal("ca.pem", o.HttpSecurity.ClientCa);
    }

    [Fact]
    public void RateLimiter_BurstThenRefuses_PerClient()
    {
        var r = new ClientRateLimiter(burst: 5, perSecond: 1);
        Assert.Equal(5, Enumerable.Range(0, 20).Count(_ => r.Admit("a")));
        Assert.True(r.Admit("b"));
    }
}

public sealed class CommandAuditTests
{
    [Theory]
    [InlineData("lcp resync", true)]
    [InlineData("lcp create net_af_packet0 host-if x", true)]
    [InlineData("clear errors", true)]
    [InlineData("set log-level debug", true)]
    [InlineData("capture stop", true)]
    [InlineData("lcp verify", false)]
    [InlineData("show lcp", false)]
    [InlineData("show capture", false)]
    [InlineData("lcp", false)]
    public void ChangesState_ClassifiesCommands(string command, bool write) =>
        Assert.Equal(write, LinuxCp.Management.Contracts.CommandCatalog.ChangesState(command.Split(' ')));
}
