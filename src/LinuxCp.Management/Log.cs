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
}
