using LinuxCp.Fuzz;
using SharpFuzz;

// LinuxCp.Fuzz <target>            under afl-fuzz (SharpFuzz's out-of-process driver): one input
//                                  per iteration on stdin, many iterations per process
// LinuxCp.Fuzz <target> --replay D every file under D, once; exit 1 listing the failures
if (args.Length < 1 || !Targets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: LinuxCp.Fuzz <{string.Join("|", Targets.Names)}> [--replay <dir>]");
    return 2;
}
string target = args[0];
if (args.Length == 3 && args[1] == "--replay")
{
    List<string> failures = Targets.Replay(target, args[2]);
    foreach (string f in failures)
        Console.Error.WriteLine(f);
    Console.WriteLine($"{target}: {Directory.EnumerateFiles(args[2], "*", SearchOption.AllDirectories).Count()} inputs, {failures.Count} failures");
    return failures.Count == 0 ? 0 : 1;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    Targets.Run(target, ms.GetBuffer().AsSpan(0, (int)ms.Length));
});
return 0;
