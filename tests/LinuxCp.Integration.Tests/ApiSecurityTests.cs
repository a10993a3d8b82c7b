using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LinuxCp.TestSupport;
using Xunit;

namespace LinuxCp.Integration.Tests;

/// <summary>The TCP management listener: writes need a read-write credential (bearer token or
/// TLS client certificate), reads need one unless public reads were asked for; refusals are 401
/// or 403, counted in /metrics; accepted writes are in the audit log. Requests come from curl
/// inside lcpd's namespace (the listener is on its loopback).</summary>
public sealed class ApiSecurityTests : IDisposable
{
    private const string Rw = "rw-token-0123456789abcdef", Ro = "ro-token-0123456789abcdef";
    private readonly string _dir = Directory.CreateTempSubdirectory("lcpauth").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static int FreePort() => 20000 + Random.Shared.Next(20000);

    private LcpdProcess Start(Topology topo, params string[] args)
    {
        var eal = LcpdProcess.TestEal($"lcpa{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        TestHost h = topo.Hosts[0];
        Cmd.InNsOk(topo.Dp, "ip", "link", "set", "lo", "up"); // the listener is on the test namespace's loopback
        return LcpdProcess.Start(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt, "--pair", $"{h.PortName}={h.MirrorName}", .. args]);
    }

    /// <summary>curl in the namespace: (HTTP status, body); status 0 when curl itself failed (TLS refused).</summary>
    private static (int Status, string Body) Curl(string ns, string method, string url, string? token = null, params string[] extra)
    {
        var args = new List<string> { "curl", "-s", "-m", "10", "-X", method, "-w", "\n%{http_code}", url };
        if (token is not null)
            args.AddRange(["-H", $"Authorization: Bearer {token}"]);
        args.AddRange(extra);
        CmdResult r = Cmd.InNs(ns, args[0], [.. args.Skip(1)]);
        string o = r.Out.TrimEnd('\n');
        int nl = o.LastIndexOf('\n');
        int status = int.TryParse(o[(nl + 1)..], out int s) ? s : 0;
        return (r.Code == 0 ? status : 0, nl < 0 ? "" : o[..nl]);
    }

    private string TokenFile()
    {
        string f = Path.Combine(_dir, "tokens");
        File.WriteAllText(f, $"# lcpd API tokens\n{Rw} rw ops\n{Ro} ro grafana  # dashboards\n");
        File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return f;
    }

    [Fact]
    public void Tokens_WritesNeedReadWrite_ReadsNeedAToken_RefusalsCountedAndWritesAudited()
    {
        using var topo = new Topology(hosts: 1);
        int port = FreePort();
        using LcpdProcess l = Start(topo, "--http", $"127.0.0.1:{port}", "--api-token-file", TokenFile());
        string b = $"http://127.0.0.1:{port}";
        Assert.Equal(401, Curl(topo.Dp, "GET", $"{b}/api/v1/version").Status);
        Assert.Equal(401, Curl(topo.Dp, "GET", $"{b}/metrics").Status);
        Assert.Equal(200, Curl(topo.Dp, "GET", $"{b}/api/v1/version", Ro).Status);

        var (st, body) = Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync");
        Assert.Equal(401, st);
        Assert.Contains("read-write credential", body, StringComparison.Ordinal);
        Assert.Equal(401, Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", "not-a-token-of-this-router").Status);
        (st, body) = Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", Ro);
        Assert.Equal(403, st);
        Assert.Contains("'grafana' is read-only", body, StringComparison.Ordinal);
        string mirror = topo.Hosts[0].MirrorName;
        Assert.Equal(403, Curl(topo.Dp, "DELETE", $"{b}/api/v1/lcp/{mirror}", Ro).Status);
        Assert.Equal(401, Curl(topo.Dp, "DELETE", $"{b}/api/v1/lcp/{mirror}", extra: ["-H", "Authorization: Basic b3BzOm9wcw=="]).Status);
        Assert.Single(l.CtlJson("show", "lcp").AsArray()); // nothing was deleted

        Assert.Equal(200, Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", Rw).Status);
        string metrics = Curl(topo.Dp, "GET", $"{b}/metrics", Ro).Body;
        Assert.Contains("lcp_api_refused_total{status=\"401\"} 5", metrics, StringComparison.Ordinal);
        Assert.Contains("lcp_api_refused_total{status=\"403\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("lcp_api_writes_total 1", metrics, StringComparison.Ordinal);
        Net.WaitUntil(() => l.Output.Contains("audit: ops from 127.0.0.1: POST /api/v1/lcp/resync -> 200", StringComparison.Ordinal),
            TimeSpan.FromSeconds(5), "the audit line");
        Assert.Contains("API refused 127.0.0.1 (401)", l.Output, StringComparison.Ordinal);
        // The unix socket keeps its own model (its file mode): no token there.
        Assert.Equal(0, l.Ctl("lcp", "resync").Code);
        Assert.NotEqual(0, l.Ctl("lcp", "delete", "no-such-pair").Code);
        Net.WaitUntil(() => l.Output.Contains("audit: unix socket: lcp resync -> ok", StringComparison.Ordinal)
            && l.Output.Contains("audit: unix socket: lcp delete no-such-pair -> error:", StringComparison.Ordinal), TimeSpan.FromSeconds(5), "the socket's audit lines");
        Assert.DoesNotContain("audit: unix socket: show", l.Output, StringComparison.Ordinal);
        Assert.Equal("srw-------", Cmd.Ok("stat", "-c", "%A", l.Socket).Trim());

        // A token revoked in the file stops working without a restart.
        string f = Path.Combine(_dir, "tokens");
        File.WriteAllText(f, $"{Ro} ro grafana\n");
        File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddSeconds(5));
        Net.WaitUntil(() => Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", Rw).Status == 401, TimeSpan.FromSeconds(5), "the revoked token refused");
    }

    [Fact]
    public void PublicReads_GetsOpen_WritesStillRefused()
    {
        using var topo = new Topology(hosts: 1);
        int port = FreePort();
        using LcpdProcess l = Start(topo, "--http", $"127.0.0.1:{port}", "--http-public-reads");
        string b = $"http://127.0.0.1:{port}";
        Assert.Equal(200, Curl(topo.Dp, "GET", $"{b}/metrics").Status);
        Assert.Equal(200, Curl(topo.Dp, "GET", $"{b}/api/v1/lcp").Status);
        Assert.Equal(401, Curl(topo.Dp, "DELETE", $"{b}/api/v1/lcp/{topo.Hosts[0].MirrorName}").Status);
        Assert.Equal(401, Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", Rw).Status); // no tokens configured
        Assert.Single(l.CtlJson("show", "lcp").AsArray());
    }

    [Fact]
    public void Tls_ClientCertificateOfTheCa_MayWrite_OthersRefused()
    {
        // A CA, a server certificate for 127.0.0.1, a client certificate from the CA, and one
        // from a CA lcpd does not know.
        using RSA caKey = RSA.Create(2048), srvKey = RSA.Create(2048), cliKey = RSA.Create(2048), rogueKey = RSA.Create(2048);
        using X509Certificate2 ca = SelfSigned("lcp test CA", caKey), rogueCa = SelfSigned("rogue CA", rogueKey);
        using X509Certificate2 srv = Issue(ca, caKey, "127.0.0.1", srvKey, server: true);
        using X509Certificate2 cli = Issue(ca, caKey, "netops", cliKey, server: false);
        using X509Certificate2 rogue = Issue(rogueCa, rogueKey, "intruder", cliKey, server: false);
        string Pem(string name, string text)
        {
            string p = Path.Combine(_dir, name);
            File.WriteAllText(p, text);
            File.SetUnixFileMode(p, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return p;
        }
        string caPem = Pem("ca.pem", ca.ExportCertificatePem()), srvPem = Pem("srv.pem", srv.ExportCertificatePem()),
            srvKeyPem = Pem("srv.key", srvKey.ExportPkcs8PrivateKeyPem()), cliPem = Pem("cli.pem", cli.ExportCertificatePem()),
            cliKeyPem = Pem("cli.key", cliKey.ExportPkcs8PrivateKeyPem()), roguePem = Pem("rogue.pem", rogue.ExportCertificatePem());

        using var topo = new Topology(hosts: 1);
        int port = FreePort();
        using LcpdProcess l = Start(topo, "--http", $"127.0.0.1:{port}", "--http-tls-cert", srvPem, "--http-tls-key", srvKeyPem,
            "--http-client-ca", caPem, "--api-token-file", TokenFile());
        string b = $"https://127.0.0.1:{port}";
        string[] trust = ["--cacert", caPem];
        Assert.Equal(200, Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", null, [.. trust, "--cert", cliPem, "--key", cliKeyPem]).Status);
        Assert.Equal(401, Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", null, trust).Status);
        Assert.Equal(401, Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", null, [.. trust, "--cert", roguePem, "--key", cliKeyPem]).Status);
        Assert.Equal(200, Curl(topo.Dp, "POST", $"{b}/api/v1/lcp/resync", Rw, trust).Status); // tokens over TLS too
        Assert.NotEqual(200, Curl(topo.Dp, "GET", $"http://127.0.0.1:{port}/api/v1/version", Ro).Status); // no plain HTTP on a TLS listener
        Net.WaitUntil(() => l.Output.Contains("audit: cert:netops from 127.0.0.1: POST /api/v1/lcp/resync -> 200", StringComparison.Ordinal),
            TimeSpan.FromSeconds(5), "the audit line naming the certificate");
    }

    [Fact]
    public void SocketGroup_SocketIs0660OfThatGroup_UnknownGroupRefused()
    {
        using var topo = new Topology(hosts: 1);
        using (LcpdProcess l = Start(topo, "--api-socket-group", "nogroup"))
            Assert.Equal("srw-rw---- nogroup", Cmd.Ok("stat", "-c", "%A %G", l.Socket).Trim());
        var eal = LcpdProcess.TestEal($"lcpg{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess bad = LcpdProcess.Launch(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt,
            "--pair", $"{topo.Hosts[0].PortName}={topo.Hosts[0].MirrorName}", "--api-socket-group", "no-such-group-lcp"]);
        Assert.Equal(1, bad.WaitExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("--api-socket-group no-such-group-lcp: no such group", bad.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenFile_ReadableByOthers_RefusedAtStart()
    {
        using var topo = new Topology(hosts: 1);
        string f = TokenFile();
        File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var eal = LcpdProcess.TestEal($"lcpa{topo.Id}");
        eal.AddRange(topo.VdevArgs());
        using LcpdProcess l = LcpdProcess.Launch(topo.Dp, eal, [.. LcpdProcess.TestFib, "--netns", topo.Rt,
            "--pair", $"{topo.Hosts[0].PortName}={topo.Hosts[0].MirrorName}", "--http", $"127.0.0.1:{FreePort()}", "--api-token-file", f]);
        Assert.Equal(1, l.WaitExit(TimeSpan.FromSeconds(60)));
        Assert.Contains($"chmod 600 {f}", l.Output, StringComparison.Ordinal);
    }

    private static X509Certificate2 SelfSigned(string name, RSA key)
    {
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, RSA caKey, string name, RSA key, bool server)
    {
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(System.Net.IPAddress.Loopback);
            req.CertificateExtensions.Add(san.Build());
        }
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        using X509Certificate2 pub = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForRSA(caKey, RSASignaturePadding.Pkcs1),
            DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), serial);
        return pub.CopyWithPrivateKey(key);
    }
}
