using System.Net;
using System.Security.Cryptography.X509Certificates;
using LinuxCp.Management.Config;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using System.Text.Json;
using System.Text.Json.Nodes;
using LinuxCp.Management.Api;
using LinuxCp.Management.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Management.Rest;

/// <summary>Body of POST /api/v1/lcp.</summary>
public sealed record LcpCreateRequest(string Port, string HostIf, string? Netns = null, bool Tun = false, bool Persist = false, uint? Table = null,
    string? Tpid = null, string? Kind = null);

/// <summary>Body of POST /api/v1/trace.</summary>
public sealed record TraceAddRequest(int Count, string? Port = null);

/// <summary>Body of POST /api/v1/capture.</summary>
public sealed record CaptureStartRequest(string Port, string File, string Direction = "both", long? Max = null);

/// <summary>Body of PUT /api/v1/log-level.</summary>
public sealed record LogLevelRequest(string Level);

/// <summary>PUT /api/v1/punt/policers/{class}: a budget per port (packets/s and burst), or off; with
/// interface, that port's own budget (default: back to the class's).</summary>
public sealed record PuntPolicerRequest(long? Rate = null, long? Burst = null, bool Off = false, string? Interface = null, bool Default = false);

/// <summary>A classifier rule for POST /api/v1/classify: the fields of `classify add rule`
/// (ranges as "p" or "p-q", tcp_flags as "value/mask"); absent fields match anything.</summary>
public sealed record ClassifyRuleRequest(string Port, string Direction = "input", string? Src = null, string? Dst = null, string? Proto = null,
    string? Sport = null, string? Dport = null, string? IcmpType = null, string? IcmpCode = null, string? TcpFlags = null,
    string Action = "drop", int? Priority = null);

/// <summary>An error reply of the REST API (400 bad request, 404 unknown path).</summary>
public sealed record ErrorDto(string Error);

/// <summary>The REST API (ASP.NET Core minimal APIs on Kestrel). Every endpoint runs the same
/// <see cref="CommandHandlers"/> command as lcpctl, so answers and errors match the CLI's.
/// Listens on a private unix socket (the API socket forwards HTTP connections to it) and, when
/// asked, on a TCP address. The OpenAPI description is at /openapi/v1.json.</summary>
public static class RestApi
{
    public const string Prefix = "/api/v1";

    /// <summary>Per-client request rate on the TCP listener: a burst, then this many a second.</summary>
    public const int TcpBurst = 200, TcpRatePerSecond = 100;

    /// <summary>The REST server. Throws <see cref="IOException"/> with the reason when
    /// the TCP listener's token file or certificates cannot be used.</summary>
    public static WebApplication Build(CommandHandlers handlers, string? unixSocket, IPEndPoint? tcp, ILoggerFactory logs, HttpSecurity? security = null,
        string? grpcSocket = null, IPEndPoint? grpcTcp = null)
    {
        security ??= new HttpSecurity();
        ILogger log = logs.CreateLogger("LinuxCp.Management.Rest.RestApi");
        TokenFile? tokens = null;
        X509Certificate2? serverCert = null, clientCa = null;
        try
        {
            if (security.TokenFile is not null)
                tokens = new TokenFile(security.TokenFile) { Invalid = r => Log.ApiAuthProblem(log, r) };
            if (security.TlsCert is not null)
                serverCert = X509Certificate2.CreateFromPemFile(security.TlsCert, security.TlsKey);
            if (security.ClientCa is not null)
                clientCa = X509CertificateLoader.LoadCertificateFromFile(security.ClientCa);
        }
        catch (Exception e) when (e is FormatException or IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new IOException(e.Message, e);
        }
        var auth = new ApiAuth(tokens, clientCa, security.PublicReads, log);
        var limiter = new ClientRateLimiter(TcpBurst, TcpRatePerSecond);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(logs);
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.MaxDepth = 16;
        });
        builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = LinuxCp.Config.Model.DocumentReader.MaxDocumentBytes);
        builder.Services.AddSingleton(handlers);
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((doc, _, _) =>
        {
            doc.Info.Title = "lcpd REST API";
            doc.Info.Version = "v1";
            doc.Info.Description = "Read and manage a LinuxCp dataplane: the same commands and answers as lcpctl (docs/cli.md).";
            return Task.CompletedTask;
        }));
        // TLS on a TCP listener when a certificate is given; a client certificate is asked for,
        // not required (a client may use a token instead): whether it chains to the CA is decided
        // per request (ApiAuth).
        void Tls(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions l)
        {
            if (serverCert is not null)
                l.UseHttps(serverCert, h =>
                {
                    if (clientCa is null)
                        return;
                    h.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                    h.AllowAnyClientCertificate();
                });
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = Protocol.MaxRequestBytes;
            k.Limits.MaxConcurrentConnections = ApiServer.MaxConnections;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            k.AddServerHeader = false;
            if (unixSocket is not null)
                k.ListenUnixSocket(unixSocket);
            // gRPC speaks HTTP/2: cleartext (h2c) on its unix socket, and on TCP with TLS as --http.
            if (grpcSocket is not null)
                k.ListenUnixSocket(grpcSocket, l => l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2);
            if (grpcTcp is not null)
                k.Listen(grpcTcp, l =>
                {
                    l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2;
                    Tls(l);
                });
            if (tcp is not null)
                k.Listen(tcp, Tls);
            k.Limits.MinRequestBodyDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(240, TimeSpan.FromSeconds(5));
        });
        WebApplication app = builder.Build();
        if (tcp is not null)
        {
            var writers = new List<string>();
            if (tokens is not null)
                writers.Add($"a read-write token ({tokens.Count} in {security.TokenFile})");
            if (clientCa is not null)
                writers.Add("a client certificate of the CA");
            Log.TcpListening(log, tcp.ToString(), $"{(serverCert is null ? "plain HTTP" : "TLS")}; reads {(security.PublicReads ? "open" : "need a credential")}; " +
                (writers.Count == 0 ? "writes refused (no credentials configured)" : $"writes need {string.Join(" or ", writers)}"));
        }
        app.Use(async (c, next) =>
        {
            if (c.Connection.LocalIpAddress is null)
            {
                // The unix socket: its file mode (0600) is the credential.
                await next(c);
                if (ApiAuth.IsWrite(c.Request))
                    auth.Audit(c, null);
                return;
            }
            if (!limiter.Admit(c.Connection.RemoteIpAddress?.ToString() ?? "?"))
            {
                auth.CountRateLimited(c);
                await Results.Json(new ErrorDto($"too many requests: more than {TcpRatePerSecond}/s from this client"), statusCode: StatusCodes.Status429TooManyRequests).ExecuteAsync(c);
                return;
            }
            if (auth.Check(c, out ApiCredential? who) is IResult refusal)
            {
                await DrainSmallBody(c);
                await refusal.ExecuteAsync(c);
                return;
            }
            await next(c);
            if (ApiAuth.IsWrite(c.Request))
                auth.Audit(c, who);
        });
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapGrpcService<ConfiguratorGrpc>();
        Map(app, handlers, auth);
        return app;
    }

    /// <summary>Reads a small refused request's body first: answering an HTTP/2 stream whose body
    /// is still arriving resets it, and the client sees a framing error instead of the 401/403.</summary>
    private static async Task DrainSmallBody(HttpContext c)
    {
        if (c.Request.ContentLength is not (> 0 and <= 65536))
            return;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted);
        cts.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await c.Request.Body.CopyToAsync(Stream.Null, cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException)
        {
        }
    }

    private static IResult Run(CommandHandlers h, params string[] argv) => RunWith(h, StatusCodes.Status200OK, argv);

    private static IResult RunWith(CommandHandlers h, int status, params string[] argv)
    {
        try
        {
            object? result = h.Run(argv, null, "cli");
            return Results.Text(JsonSerializer.Serialize(result, result?.GetType() ?? typeof(object), Protocol.Json), "application/json", statusCode: status);
        }
        catch (ApiException e)
        {
            return Results.Json(new ErrorDto(e.Message), statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private static RouteHandlerBuilder Get<T>(IEndpointRouteBuilder app, string path, string summary, Func<HttpContext, IResult> f) =>
        app.MapGet(Prefix + path, f).WithSummary(summary).Produces<T>().Produces<ErrorDto>(400);

    private static void Map(WebApplication app, CommandHandlers h, ApiAuth auth)
    {
        Get<VersionDto>(app, "/version", "lcpd, DPDK and runtime versions", _ => Run(h, "show", "version"));
        Get<List<InterfaceDto>>(app, "/interfaces", "ports and mirrors with counters", _ => Run(h, "show", "interfaces"));
        Get<List<LcpDto>>(app, "/lcp", "port/mirror pairs", _ => Run(h, "show", "lcp"));
        Get<List<ErrorCounterDto>>(app, "/errors", "drop and punt counters by reason", _ => Run(h, "show", "errors"));
        Get<List<BufferDto>>(app, "/buffers", "mbuf pools", _ => Run(h, "show", "buffers"));
        Get<List<WorkerDto>>(app, "/runtime", "per-worker, per-path runtime figures", _ => Run(h, "show", "runtime"));
        Get<List<LatencyDto>>(app, "/latency", "latency percentiles per path", _ => Run(h, "show", "latency"));
        Get<List<FibRouteDto>>(app, "/ip/fib", "IPv4 FIB (optional ?prefix=)", c => Fib(h, c, "ip"));
        Get<List<FibRouteDto>>(app, "/ip6/fib", "IPv6 FIB (optional ?prefix=)", c => Fib(h, c, "ip6"));
        Get<FibSummaryDto>(app, "/ip/fib/summary", "route counts", _ => Run(h, "show", "ip", "fib", "summary"));
        Get<List<NeighborDto>>(app, "/ip/neighbors", "resolved neighbours", _ => Run(h, "show", "ip", "neighbors"));
        Get<List<TracePacketDto>>(app, "/trace", "traced packets", _ => Run(h, "show", "trace"));
        Get<CaptureDto>(app, "/capture", "current or last capture", _ => Run(h, "show", "capture"));
        Get<DpdkDto>(app, "/dpdk", "EAL, lcores, ports, mempools", _ => Run(h, "show", "dpdk"));
        Get<MemoryDto>(app, "/memory", "managed and native memory, GC", _ => Run(h, "show", "memory"));
        Get<LogLevelDto>(app, "/log-level", "current log level", _ => Run(h, "show", "log-level"));

        app.MapPost(Prefix + "/lcp", (LcpCreateRequest r) =>
        {
            var argv = new List<string> { "lcp", "create", r.Port ?? "", "host-if", r.HostIf ?? "" };
            if (r.Netns is not null)
                argv.AddRange(["netns", r.Netns]);
            if (r.Tun)
                argv.Add("tun");
            if (r.Persist)
                argv.Add("persist");
            if (r.Table is uint t)
                argv.AddRange(["table", t.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            if (r.Tpid is string tpid)
                argv.AddRange(["tpid", tpid]);
            if (r.Kind is "veth" or "veth-xdp")
                argv.Add(r.Kind);
            return RunWith(h, StatusCodes.Status201Created, [.. argv]);
        }).WithSummary("create a pair: a mirror for a port").Produces<LcpDto>(201).Produces<ErrorDto>(400);
        app.MapDelete(Prefix + "/lcp/{name}", (string name) => Run(h, "lcp", "delete", name))
            .WithSummary("delete a pair (by port or host interface name)").Produces<LcpDto>().Produces<ErrorDto>(400);
        Get<VerifyDto>(app, "/lcp/verify", "compare Linux's tables with the FIB (optional ?table=&netns=)", c => Run(h, [.. Scope(c, "lcp", "verify")]));
        app.MapPost(Prefix + "/lcp/resync", () => Run(h, "lcp", "resync"))
            .WithSummary("re-read Linux state and fix the FIB").Produces<ResyncDto>().Produces<ErrorDto>(400);
        app.MapPost(Prefix + "/errors/clear", () => Run(h, "clear", "errors")).WithSummary("reset error counters").Produces<List<ErrorCounterDto>>();
        app.MapPost(Prefix + "/runtime/clear", () => Run(h, "clear", "runtime")).WithSummary("reset runtime figures").Produces<List<WorkerDto>>();
        app.MapPost(Prefix + "/trace", (TraceAddRequest r) => r.Port is null
                ? Run(h, "trace", "add", r.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))
                : Run(h, "trace", "add", r.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), "port", r.Port))
            .WithSummary("trace the next packets").Produces<TraceStatusDto>().Produces<ErrorDto>(400);
        app.MapDelete(Prefix + "/trace", () => Run(h, "clear", "trace")).WithSummary("stop tracing, drop records").Produces<TraceStatusDto>();
        app.MapPost(Prefix + "/capture", (CaptureStartRequest r) =>
        {
            var argv = new List<string> { "capture", "start", "port", r.Port ?? "", r.Direction ?? "both", "file", r.File ?? "" };
            if (r.Max is long m)
                argv.AddRange(["max", m.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            return Run(h, [.. argv]);
        }).WithSummary("start a pcap capture").Produces<CaptureDto>().Produces<ErrorDto>(400);
        app.MapDelete(Prefix + "/capture", () => Run(h, "capture", "stop")).WithSummary("stop the capture").Produces<CaptureDto>().Produces<ErrorDto>(400);
        Get<List<ClassifyRuleDto>>(app, "/classify", "classifier rules with counters (optional ?interface=)", c =>
            c.Request.Query["interface"].FirstOrDefault() is { } port ? Run(h, "show", "classify", "interface", port) : Run(h, "show", "classify"));
        app.MapPost(Prefix + "/classify", (ClassifyRuleRequest r) =>
        {
            var argv = new List<string> { "classify", "add", "rule", r.Port ?? "", r.Direction ?? "input" };
            void Opt(string word, string? v)
            {
                if (v is not null)
                    argv.AddRange([word, v]);
            }
            Opt("src", r.Src);
            Opt("dst", r.Dst);
            Opt("proto", r.Proto);
            Opt("sport", r.Sport);
            Opt("dport", r.Dport);
            Opt("icmp-type", r.IcmpType);
            Opt("icmp-code", r.IcmpCode);
            Opt("tcp-flags", r.TcpFlags);
            argv.Add(r.Action ?? "drop");
            Opt("priority", r.Priority?.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return RunWith(h, StatusCodes.Status201Created, [.. argv]);
        }).WithSummary("add a classifier rule (two when no address gives the family)").Produces<List<ClassifyRuleDto>>(201).Produces<ErrorDto>(400);
        app.MapDelete(Prefix + "/classify/{id}", (string id) => Run(h, "classify", "del", "rule", id))
            .WithSummary("delete a classifier rule").Produces<ClassifyDeleteDto>().Produces<ErrorDto>(400);
        app.MapPost(Prefix + "/classify/clear", () => Run(h, "clear", "classify")).WithSummary("reset the rules' counters").Produces<List<ClassifyRuleDto>>();
        Get<List<PuntPolicerDto>>(app, "/punt/policers", "punt policer classes with budgets and counters (optional ?interface=)", c =>
            c.Request.Query["interface"].FirstOrDefault() is { } port ? Run(h, "show", "punt", "policers", "interface", port) : Run(h, "show", "punt", "policers"));
        app.MapPut(Prefix + "/punt/policers/{cls}", (string cls, PuntPolicerRequest r) =>
            {
                string[] port = r.Interface is null ? [] : ["interface", r.Interface];
                string[] budget = r.Off ? ["off"] : r.Default ? ["default"]
                    : ["rate", r.Rate?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "",
                       "burst", r.Burst?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? ""];
                return Run(h, ["set", "punt", "policer", cls, .. port, .. budget]);
            })
            .WithSummary("change a punt class's budget (all ports, or one port's own with interface; default: back to the class's), or stop policing it").Produces<List<PuntPolicerDto>>().Produces<ErrorDto>(400);
        app.MapPut(Prefix + "/log-level", (LogLevelRequest r) => Run(h, "set", "log-level", r.Level ?? ""))
            .WithSummary("change the log level").Produces<LogLevelDto>().Produces<ErrorDto>(400);

        ConfigRest.Map(app, h);

        app.MapGet("/metrics", () => Results.Text(MetricsWriter.Render(h) + MetricsWriter.RenderApi(auth), MetricsWriter.ContentType))
            .WithSummary("Prometheus metrics").Produces<string>(200, "text/plain");
        app.MapFallback((HttpContext c) => Results.Json(new ErrorDto($"no such endpoint: {c.Request.Method} {c.Request.Path} (see /openapi/v1.json)"),
            statusCode: StatusCodes.Status404NotFound));
    }

    private static IResult Fib(CommandHandlers h, HttpContext c, string family)
    {
        List<string> argv = Scope(c, "show", family, "fib");
        string? prefix = c.Request.Query["prefix"];
        if (!string.IsNullOrEmpty(prefix))
            argv.Add(prefix);
        return Run(h, [.. argv]);
    }

    /// <summary>The command words plus the table/netns a query names (?table=&amp;netns=).</summary>
    private static List<string> Scope(HttpContext c, params string[] words)
    {
        var argv = new List<string>(words);
        if (c.Request.Query["table"].ToString() is { Length: > 0 } table)
            argv.AddRange(["table", table]);
        if (c.Request.Query["netns"].ToString() is { Length: > 0 } ns)
            argv.AddRange(["netns", ns]);
        return argv;
    }
}
