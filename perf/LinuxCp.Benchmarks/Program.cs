using BenchmarkDotNet.Running;

namespace LinuxCp.Benchmarks;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "replay")
            return Replay.Run(args[1..]);
        if (args.Length > 0 && args[0] == "acl-check")
            return AclCheck.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
