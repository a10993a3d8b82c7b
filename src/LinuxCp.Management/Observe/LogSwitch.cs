using Microsoft.Extensions.Logging;

namespace LinuxCp.Management.Observe;

/// <summary>The process-wide minimum log level, changeable at run time (<c>lcpctl set
/// log-level</c>). The logging filter reads it on every IsEnabled check.</summary>
public static class LogSwitch
{
    private static volatile int s_level = (int)LogLevel.Information;

    public static LogLevel Level
    {
        get => (LogLevel)s_level;
        set => s_level = (int)value;
    }

    public static readonly string[] Names = ["trace", "debug", "info", "warning", "error", "critical"];

    public static bool TryParse(string s, out LogLevel level)
    {
        level = s switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "info" or "information" => LogLevel.Information,
            "warning" or "warn" => LogLevel.Warning,
            "error" => LogLevel.Error,
            "critical" => LogLevel.Critical,
            _ => LogLevel.None,
        };
        return level != LogLevel.None;
    }

    public static string Name(LogLevel l) => l switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warning",
        LogLevel.Error => "error",
        _ => "critical",
    };

    /// <summary>The filter lcpd installs: the run-time level for our categories; framework
    /// (Microsoft.*) categories at warning or above unless debugging.</summary>
    public static bool Filter(string? category, LogLevel level)
    {
        LogLevel min = Level;
        if (category is not null && category.StartsWith("Microsoft", StringComparison.Ordinal) && min > LogLevel.Debug)
            min = LogLevel.Warning > min ? LogLevel.Warning : min;
        return level >= min;
    }
}
