using Microsoft.Extensions.Logging;

namespace LinuxCp.Management;

/// <summary>Management log events (stable ids 2000-2099).</summary>
internal static partial class Log
{
    [LoggerMessage(2000, LogLevel.Information, "API listening on {Path}")]
    public static partial void ApiListening(ILogger log, string path);

    [LoggerMessage(2001, LogLevel.Warning, "API accept failed: {Reason}")]
    public static partial void ApiAcceptFailed(ILogger log, string reason);

    [LoggerMessage(2002, LogLevel.Error, "API handler failed")]
    public static partial void ApiHandlerFailed(ILogger log, Exception e);

    [LoggerMessage(2003, LogLevel.Information, "audit: {Who} from {Client}: {Method} {Path} -> {Status}")]
    public static partial void ApiWrite(ILogger log, string who, string client, string method, string path, int status);

    [LoggerMessage(2004, LogLevel.Warning, "API refused {Client} ({Status}) {Method} {Path}: {Reason} (logged once a minute per client)")]
    public static partial void ApiRefused(ILogger log, string client, int status, string method, string path, string reason);

    [LoggerMessage(2005, LogLevel.Warning, "API: {Reason}")]
    public static partial void ApiAuthProblem(ILogger log, string reason);

    [LoggerMessage(2007, LogLevel.Information, "audit: unix socket: {Command} -> {Result}")]
    public static partial void ApiCommandAudit(ILogger log, string command, string result);

    [LoggerMessage(2006, LogLevel.Information, "REST on TCP {Endpoint}: {Mode}")]
    public static partial void TcpListening(ILogger log, string endpoint, string mode);
}
