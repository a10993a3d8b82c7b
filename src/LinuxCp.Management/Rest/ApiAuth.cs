using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Management.Rest;

/// <summary>A credential of the TCP listener: who it is (for the audit log) and whether it may change state.</summary>
public sealed record ApiCredential(string Name, bool Write);

/// <summary>Bearer tokens from a file, one per line: <c>&lt;token&gt; &lt;ro|rw&gt; &lt;name&gt;</c>
/// (<c>#</c> starts a comment). The file must be readable by its owner only, tokens are at least
/// 16 characters; only their SHA-256 is kept. The file is read again when it changes (checked at
/// most once a second), so tokens can be added or revoked without a restart; a file that became
/// invalid keeps the previous tokens and is reported.</summary>
public sealed class TokenFile
{
    public const int MinTokenLength = 16;
    private readonly string _path;
    private volatile Dictionary<string, ApiCredential> _tokens;
    private DateTime _mtime;
    private long _checkedAt;

    /// <summary>Called with the reason when a changed file cannot be used.</summary>
    public Action<string>? Invalid { get; set; }

    public TokenFile(string path)
    {
        _path = path;
        _tokens = Load(path, out _mtime);
    }

    public int Count => _tokens.Count;

    /// <summary>Reads and checks a token file; throws <see cref="FormatException"/> with the file,
    /// line and reason.</summary>
    public static Dictionary<string, ApiCredential> Load(string path, out DateTime mtime)
    {
        UnixFileMode mode;
        try
        {
            mode = File.GetUnixFileMode(path);
            mtime = File.GetLastWriteTimeUtc(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"token file {path}: {e.Message}");
        }
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            throw new FormatException($"token file {path}: readable or writable by others (chmod 600 {path})");
        var tokens = new Dictionary<string, ApiCredential>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        int n = 0;
        foreach (string raw in File.ReadLines(path))
        {
            n++;
            string line = raw.Split('#', 2)[0].Trim();
            if (line.Length == 0)
                continue;
            string[] f = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length != 3)
                throw new FormatException($"token file {path}:{n}: expected '<token> <ro|rw> <name>'");
            if (f[0].Length < MinTokenLength)
                throw new FormatException($"token file {path}:{n}: token shorter than {MinTokenLength} characters");
            if (f[1] is not ("ro" or "rw"))
                throw new FormatException($"token file {path}:{n}: access '{f[1]}' is not ro or rw");
            if (!names.Add(f[2]))
                throw new FormatException($"token file {path}:{n}: name '{f[2]}' used twice");
            if (!tokens.TryAdd(Hash(f[0]), new ApiCredential(f[2], f[1] == "rw")))
                throw new FormatException($"token file {path}:{n}: the same token twice");
        }
        return tokens;
    }

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    public ApiCredential? Find(string token)
    {
        Reload();
        return _tokens.GetValueOrDefault(Hash(token));
    }

    private void Reload()
    {
        long now = Environment.TickCount64;
        long last = Interlocked.Read(ref _checkedAt);
        if (now - last < 1000 || Interlocked.CompareExchange(ref _checkedAt, now, last) != last)
            return;
        try
        {
            if (File.GetLastWriteTimeUtc(_path) == _mtime)
                return;
            _tokens = Load(_path, out _mtime);
        }
        catch (FormatException e)
        {
            _mtime = File.Exists(_path) ? File.GetLastWriteTimeUtc(_path) : _mtime;
            Invalid?.Invoke($"{e.Message}; the previous tokens stay in force");
        }
    }
}

/// <summary>What the TCP listener asks of a request: reads need a credential unless public
/// reads were asked for, writes (any method but GET/HEAD) a read-write one. A credential is a
/// bearer token (<see cref="TokenFile"/>) or a TLS client certificate that chains to the
/// configured CA. Refusals are 401 (none or unknown) and 403 (read-only), counted and logged
/// once per client per minute; every accepted write is logged with who made it and the result.</summary>
public sealed class ApiAuth(TokenFile? tokens, X509Certificate2? clientCa, bool publicReads, ILogger log)
{
    private readonly ConcurrentDictionary<string, long> _lastLogged = new();
    private long _unauthenticated, _forbidden, _accepted, _rateLimited;

    public long Unauthenticated => Interlocked.Read(ref _unauthenticated);
    public long Forbidden => Interlocked.Read(ref _forbidden);
    public long AcceptedWrites => Interlocked.Read(ref _accepted);
    public long RateLimited => Interlocked.Read(ref _rateLimited);

    public static bool IsWrite(string method) => !HttpMethods.IsGet(method) && !HttpMethods.IsHead(method);

    /// <summary>gRPC calls are all POSTs: the Configurator's Get, Dump and Notify only read.</summary>
    public static bool IsWrite(HttpRequest r) =>
        r.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true
            ? !(r.Path.Value?.EndsWith("/Get", StringComparison.Ordinal) == true || r.Path.Value?.EndsWith("/Dump", StringComparison.Ordinal) == true
                || r.Path.Value?.EndsWith("/Notify", StringComparison.Ordinal) == true)
            : IsWrite(r.Method);

    /// <summary>The credential a request carries, or null; a reason when what it carries is wrong.</summary>
    public ApiCredential? Identify(HttpContext c, out string? problem)
    {
        problem = null;
        string auth = c.Request.Headers.Authorization.ToString();
        if (auth.Length > 0)
        {
            if (!auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                problem = "only bearer tokens are accepted (Authorization: Bearer <token>)";
                return null;
            }
            if (tokens is null)
            {
                problem = "no tokens are configured on this listener (--api-token-file)";
                return null;
            }
            ApiCredential? t = tokens.Find(auth["Bearer ".Length..].Trim());
            if (t is null)
                problem = "unknown token";
            return t;
        }
        if (clientCa is not null && c.Connection.ClientCertificate is X509Certificate2 cert && ChainsTo(cert, clientCa))
            return new ApiCredential($"cert:{cert.GetNameInfo(X509NameType.SimpleName, false)}", true);
        return null;
    }

    /// <summary>Does a client certificate chain to the CA (and is it valid now, for client auth)?</summary>
    public static bool ChainsTo(X509Certificate2 cert, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // client authentication
        return chain.Build(cert);
    }

    /// <summary>Decides on one TCP request: null to go on (with the credential, if any, in
    /// <paramref name="who"/>), or the refusal to send.</summary>
    public IResult? Check(HttpContext c, out ApiCredential? who)
    {
        bool write = IsWrite(c.Request);
        who = Identify(c, out string? problem);
        if (who is null && (write || !publicReads || problem is not null))
        {
            Interlocked.Increment(ref _unauthenticated);
            string reason = problem ?? (write ? "a read-write credential is needed to change state" : "a credential is needed (bearer token or client certificate)");
            Refused(c, 401, reason);
            c.Response.Headers.WWWAuthenticate = "Bearer";
            return Results.Json(new ErrorDto(reason), statusCode: StatusCodes.Status401Unauthorized);
        }
        if (write && who is { Write: false })
        {
            Interlocked.Increment(ref _forbidden);
            string reason = $"'{who.Name}' is read-only";
            Refused(c, 403, reason);
            return Results.Json(new ErrorDto(reason), statusCode: StatusCodes.Status403Forbidden);
        }
        return null;
    }

    public void CountRateLimited(HttpContext c)
    {
        Interlocked.Increment(ref _rateLimited);
        Refused(c, 429, "request rate over the per-client limit");
    }

    /// <summary>The audit line of an accepted write (after it ran).</summary>
    public void Audit(HttpContext c, ApiCredential? who)
    {
        Interlocked.Increment(ref _accepted);
        Log.ApiWrite(log, who?.Name ?? "unix socket", Client(c), c.Request.Method, c.Request.Path + c.Request.QueryString, c.Response.StatusCode);
    }

    private void Refused(HttpContext c, int status, string reason)
    {
        string client = Client(c);
        long now = Environment.TickCount64;
        bool first = true;
        _lastLogged.AddOrUpdate($"{client} {status}", now, (_, last) =>
        {
            first = now - last >= 60_000;
            return first ? now : last;
        });
        if (first)
            Log.ApiRefused(log, client, status, c.Request.Method, c.Request.Path, reason);
        if (_lastLogged.Count > 4096)
            _lastLogged.Clear(); // bounded: a scan from many addresses cannot grow it without end
    }

    private static string Client(HttpContext c) => c.Connection.RemoteIpAddress?.ToString() ?? "unix";
}

/// <summary>A token bucket per client address: <c>burst</c> requests at once, refilled at
/// <c>perSecond</c>. Bounded: past 4096 clients the table starts over.</summary>
public sealed class ClientRateLimiter(int burst, int perSecond)
{
    private sealed class Bucket
    {
        public double Tokens;
        public long Stamp;
    }

    private readonly ConcurrentDictionary<string, Bucket> _buckets = new();

    public bool Admit(string client)
    {
        if (_buckets.Count > 4096)
            _buckets.Clear();
        Bucket b = _buckets.GetOrAdd(client, _ => new Bucket { Tokens = burst, Stamp = System.Diagnostics.Stopwatch.GetTimestamp() });
        lock (b)
        {
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            b.Tokens = Math.Min(burst, b.Tokens + (now - b.Stamp) * (double)perSecond / System.Diagnostics.Stopwatch.Frequency);
            b.Stamp = now;
            if (b.Tokens < 1)
                return false;
            b.Tokens -= 1;
            return true;
        }
    }
}
