using System.Runtime.InteropServices;
using DpdkSharp;
using LinuxCp.Config.Engine;
using LinuxCp.Config.Linux;
using LinuxCp.Config.Model;
using LinuxCp.ControlPlane.Netlink;
using LinuxCp.ControlPlane.Pairs;
using LinuxCp.ControlPlane.Routing;
using LinuxCp.Dataplane.Fib;
using LinuxCp.Daemon;
using LinuxCp.Dataplane;
using LinuxCp.Dataplane.Lcore;
using LinuxCp.Management.Api;
using LinuxCp.Management.Config;
using LinuxCp.Management.Observe;
using LinuxCp.Management.Rest;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LinuxCp.Daemon
{
    internal static class Lcpd
    {
        public static int Main(string[] args)
        {
            LaunchOptions opt;
            try
            {
                opt = LaunchOptions.Parse(args);
            }
            catch (UsageException e)
            {
                Console.Error.WriteLine($"lcpd: {e.Message}");
                Console.Error.WriteLine("Try 'lcpd --help'.");
                return 2;
            }
            if (opt.Help)
            {
                Console.WriteLine(LaunchOptions.HelpText);
                return 0;
            }

            if (opt.Check)
            {
                var report = LinuxCp.Management.Doctor.LaunchChecks.Run(LinuxCp.ControlPlane.Host.HostFacts.Real, opt);
                Console.Write(opt.CheckJson ? LinuxCp.Management.Doctor.Checklist.Json(report) : LinuxCp.Management.Doctor.Checklist.Format(report));
                return report.Fail > 0 ? 1 : 0;
            }
            // Traps EAL would report obscurely (or not at all), refused with the fix.
            if (LinuxCp.Management.Doctor.Checklist.HugepageRefusal(LinuxCp.ControlPlane.Host.HostFacts.Real,
                    LinuxCp.Management.Doctor.Checklist.FromEal(opt.EalArgs, opt.KeepPortIpv6)) is string refusal)
                return Fail(refusal);

            using ILoggerFactory logs = LoggerFactory.Create(b => ConfigureLogging(b, opt));
            ILogger log = logs.CreateLogger("lcpd");
            // SIGTERM/SIGINT while lcpd starts (EAL, pairs, the start-up dump; the API answers
            // before the host runs) are kept and acted on as soon as it runs: they used to be lost.
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, StopSignal);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, StopSignal);
            try
            {
                if (Privileges.Check() is string why)
                    return Fail(why);
                List<string> mismatches;
                try
                {
                    mismatches = LayoutCheck.Mismatches();
                }
                catch (DllNotFoundException e)
                {
                    return Fail($"cannot load liblcpshim.so or the DPDK libraries: {e.Message}");
                }
                if (mismatches.Count != 0)
                    return Fail("the bindings do not match the installed DPDK (rebuild with ./build.sh):\n  "
                        + string.Join("\n  ", mismatches));

                Eal.SaveInitialAffinity();
                try
                {
                    Eal.Init("lcpd", opt.EalArgs);
                }
                catch (DpdkException e)
                {
                    return Fail(e.Message);
                }
                try
                {
                    return Run(opt, logs, log);
                }
                finally
                {
                    Eal.Cleanup();
                }
            }
            catch (Exception e) when (e is DpdkException or PairException or IOException or UnauthorizedAccessException
                                      or System.Net.Sockets.SocketException or FibCapacityException)
            {
                return Fail(e.Message);
            }
        }

        private static int Fail(string message)
        {
            Console.Error.WriteLine($"lcpd: {message}");
            return 1;
        }

        private static void ConfigureLogging(ILoggingBuilder b, LaunchOptions opt)
        {
            b.ClearProviders();
            b.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
            b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            // Everything passes the static minimum; the run-time level (lcpctl set log-level)
            // is applied by the filter on every IsEnabled check.
            LogSwitch.TryParse(opt.LogLevel, out LogLevel level);
            LogSwitch.Level = level;
            b.SetMinimumLevel(LogLevel.Trace);
            b.AddFilter(LogSwitch.Filter);
        }

        /// <summary>The start-up dump (<see cref="RoutingService.Start"/>) on its own thread, so
        /// that the API, REST and the host are built meanwhile. The workers do not run yet, so
        /// their CPUs are free: the dump may run there too, and a helper writes the FIB's second
        /// copy there (the pinner puts control threads back once the workers run).</summary>
        private sealed class StartupDump : IDisposable
        {
            private readonly Thread _thread;
            private System.Runtime.ExceptionServices.ExceptionDispatchInfo? _failed;

            public StartupDump(RoutingService routing, ulong workerCpus)
            {
                _thread = new Thread(() =>
                {
                    try
                    {
                        Eal.SetControlAffinity(0);
                        routing.Start(() => Eal.SetControlAffinity(~workerCpus));
                    }
                    catch (Exception e)
                    {
                        _failed = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
                    }
                }) { Name = "lcp-startup-dump" };
                _thread.Start();
            }

            /// <summary>Waits for the dump; its failure is rethrown here.</summary>
            public void Finish()
            {
                _thread.Join();
                _failed?.Throw();
            }

            public void Dispose() => _thread.Join();
        }

        /// <summary>Moves every thread but the workers off the workers' CPUs: the runtime's own
        /// threads (JIT tier-up, finalizer, signal handling, console logging) start before EAL
        /// pins the main thread and would otherwise run on, and stall, a worker's CPU. Repeated,
        /// so threads the runtime starts later are caught too.</summary>
        private static void PinControlThreads(DataplaneEngine engine, ulong workerCpus)
        {
            var workers = engine.Workers;
            var keep = new int[workers.Count];
            for (int i = 0; i < keep.Length; i++)
            {
                keep[i] = Volatile.Read(ref workers[i].ThreadId);
                if (keep[i] == 0)
                    return; // not started yet: it would be taken for a control thread
            }
            Eal.PinOtherThreads(workerCpus, keep);
        }

        private static int Run(LaunchOptions opt, ILoggerFactory logs, ILogger log)
        {
            uint mainLcore = Eal.MainLcore;
            List<uint> lcores = Eal.WorkerLcores();
            if (lcores.Count == 0)
                lcores = [mainLcore];
            ulong workerCpus = 0;
            foreach (uint l in lcores)
                workerCpus |= Eal.LcoreCpus(l);
            // EAL pinned this thread to the main lcore's CPU, and threads inherit that: move it
            // (and so the host, the thread pool and the API) off the workers' CPUs.
            Eal.SetControlAffinity(workerCpus);

            var workerOptions = new WorkerOptions { PuntOther = opt.PuntOther, IdleSleepMicros = opt.IdleSleepMicros };
            DataplaneEngine engineTmp;
            try
            {
                engineTmp = new DataplaneEngine(workerOptions, lcores, mainLcore, opt.QueueMap);
            }
            catch (ArgumentException e)
            {
                return Fail($"--queue-map: {e.Message}");
            }
            using DataplaneEngine engine = engineTmp;
            int socket = Dpdk_SocketId();
            Mempool pool = Mempool.CreatePktmbuf("lcp_mbufs", opt.Mbufs, 256, 2048 + 128, socket);
            var pairs = new PairManager(engine, pool, opt.Netns, logs.CreateLogger<PairManager>())
            {
                RxDescriptors = opt.RxDescriptors,
                TxDescriptors = opt.TxDescriptors,
                KeepPortIpv6 = opt.KeepPortIpv6,
                PuntUnknownVlan = opt.PuntUnknownVlan,
            };
            bool portsUp = false;
            try
            {
                try
                {
                    pairs.CreateBonds(opt.Bonds);
                }
                catch (PairException e)
                {
                    return Fail($"--bond: {e.Message}");
                }
                pairs.AdoptPhysicalPorts(opt.PortMacs);
                portsUp = true;
                foreach (AttachSpec a in opt.Attach)
                {
                    try
                    {
                        pairs.Attach(a.Ifname, a.Netns, a.Xdp);
                    }
                    catch (PairException e)
                    {
                        return Fail($"--attach {a.Ifname}: {e.Message}");
                    }
                }
                if (pairs.PhysicalPorts().Count == 0)
                    return Fail("no ports: give EAL a device (-a <pci address> or --vdev <device>) or --attach an interface");
                FibWriter? fib = null;
                RoutingService? routing = null;
                LinkSync? linkSync = null;
                StartupDump? startup = null;
                try
                {
                    if (opt.Fib)
                    {
                        // Sized before the mirrors exist (their queues take memory too: the plan
                        // keeps a reserve), from what EAL has left after the mbuf pool.
                        var backend = new RteFibBackend(socket);
                        FibPlan plan = FibSizing.Plan(opt.FibRoutes, opt.Fib6Routes, opt.FibTbl8, backend, FibSizing.AvailableEalMemory(), opt.Fib6Tbl8);
                        if (plan.Note is string note)
                            Log.FibSized(log, note);
                        fib = new FibWriter(backend, engine, RoutingService.DefaultTable, plan.V4, plan.V6)
                        {
                            AvailableMemory = FibSizing.AvailableEalMemory,
                        };
                    }
                    foreach (PairSpec p in opt.Pairs)
                    {
                        try
                        {
                            pairs.Create(p.Port, p.HostIf, p.Netns, p.Tun, p.Persist, p.Table, p.Tpid, p.Kind);
                        }
                        catch (PairException e)
                        {
                            return Fail($"--pair {p.Port}={p.HostIf}: {e.Message}");
                        }
                    }
                    if (fib is not null)
                    {
                        routing = new RoutingService(fib, pairs, new NetlinkOptions { ReceiveBuffer = (int)opt.NetlinkReceiveBuffer, BatchEvents = (int)opt.NetlinkBatch }, logs);
                        startup = new StartupDump(routing, workerCpus);
                    }
                    if (opt.LinkSync || opt.Bonds.Count != 0)
                    {
                        linkSync = new LinkSync(pairs.Pairs, logs.CreateLogger<LinkSync>(), TimeSpan.FromMilliseconds(opt.LinkPollMs),
                            TimeSpan.FromMilliseconds(opt.LinkHoldDownMs))
                        {
                            SyncCarrier = opt.LinkSync,
                            OnTick = opt.Bonds.Count == 0 ? null : () => pairs.SyncBondMembers(),
                        };
                    }
                    return Serve(opt, logs, log, engine, pairs, pool, workerCpus, routing, linkSync, startup);
                }
                finally
                {
                    startup?.Dispose();
                    linkSync?.Dispose();
                    routing?.Dispose();
                    fib?.Dispose();
                }
            }
            finally
            {
                if (portsUp)
                {
                    pairs.DeleteAll();
                    pairs.ClosePhysicalPorts();
                }
            }
        }

        private static int Dpdk_SocketId() => (int)DpdkSharp.Native.Dpdk.rte_socket_id();

        private static int Serve(LaunchOptions opt, ILoggerFactory logs, ILogger log, DataplaneEngine engine,
            PairManager pairs, Mempool pool, ulong workerCpus, RoutingService? routing, LinkSync? linkSync, StartupDump? startup)
        {
            string version = typeof(Lcpd).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
            var state = new RouterState(engine, pairs, pool, version, DpdkVersion(), routing, opt.DebugCommands) { LinkSync = opt.LinkSync ? linkSync : null };
            using var handlers = new CommandHandlers(state, opt.FlowTable);
            if (opt.ClassifyFile is string rulesFile)
            {
                int loaded = handlers.Classify.LoadFile(rulesFile);
                Log.ClassifierLoaded(log, loaded, rulesFile);
            }

            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Args = [] });
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(logs);
            builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(3));
            builder.Services.AddSingleton(state);
            builder.Services.AddSingleton(handlers);
            using ConfigEngine? config = opt.ConfigLayer ? StartConfig(opt, logs, pairs) : null;
            if (config is not null)
                handlers.Config = new ConfigCommands(config);
            using var configTicker = config is null ? null : new Timer(_ => config.Tick(), null, 1000, 1000);
            using var etcd = config is not null && opt.Etcd is string endpoints
                ? new LinuxCp.Config.Sources.EtcdSource(config, endpoints, opt.AgentLabel, logs.CreateLogger("etcd"))
                : null;
            if (etcd is not null)
            {
                etcd.Start();
                handlers.Config!.Etcd = etcd;
            }
            var api = new ApiServer(handlers, opt.ApiSocket, logs.CreateLogger<ApiServer>()) { Group = opt.ApiSocketGroup };
            builder.Services.AddHostedService(_ => api);
            using IHost host = builder.Build();

            // REST: Kestrel on a private socket next to the API socket (the API socket forwards
            // HTTP connections to it) and on --http if given.
            Microsoft.AspNetCore.Builder.WebApplication? rest = null;
            string? restSocket = null;
            if (opt.Rest || opt.Http is not null || opt.Grpc is not null || opt.ConfigLayer)
            {
                if (opt.Rest)
                {
                    restSocket = opt.ApiSocket + ".http";
                    File.Delete(restSocket);
                }
                File.Delete(opt.ApiSocket + ".grpc");
                rest = RestApi.Build(handlers, restSocket, opt.Http, logs, opt.HttpSecurity,
                    opt.ConfigLayer ? opt.ApiSocket + ".grpc" : null, opt.ConfigLayer ? opt.Grpc : null);
            }
            // Everything above was built while the start-up dump ran. The API and REST listen once
            // it is in (answering means running, as scripts and supervisors expect).
            startup?.Finish();
            api.Bind();
            if (rest is not null)
            {
                rest.StartAsync().GetAwaiter().GetResult();
                if (restSocket is not null)
                {
                    File.SetUnixFileMode(restSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                    api.HttpForward = restSocket;
                }
                if (opt.ConfigLayer && File.Exists(opt.ApiSocket + ".grpc"))
                    File.SetUnixFileMode(opt.ApiSocket + ".grpc", UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            int exitCode = 0;
            var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
            engine.OnFailure((worker, e) =>
            {
                Log.WorkerFailed(log, worker, e);
                exitCode = 1;
                lifetime.StopApplication();
            });
            lifetime.ApplicationStopping.Register(engine.Stop);
            host.Start();
            linkSync?.Start();
            // Start-up's garbage is collected now, while no worker runs: every collection pauses
            // the workers (they are managed threads), and a process's first collections, which
            // promote what start-up built, pause longest (8-10 ms measured against about 2 ms
            // later). Counted by show memory as two induced gen2 collections.
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            Log.Started(log, engine.WorkerCount, string.Join(",", engine.Workers.Select(w => w.Lcore)), pairs.Pairs().Count,
                (DateTime.Now - System.Diagnostics.Process.GetCurrentProcess().StartTime).TotalSeconds,
                System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime().TotalSeconds);
            Volatile.Write(ref s_stop, lifetime.StopApplication);
            if (Volatile.Read(ref s_stopAsked) != 0)
                lifetime.StopApplication(); // a signal came during start-up (the workers see the stop at once)

            engine.LaunchWorkers();
            // (threads made during start-up, the start-up dump's among them, may run on any CPU until then)
            using var pinner = new Timer(_ => PinControlThreads(engine, workerCpus), null, 500, 5000);
            var resources = new LinuxCp.Management.Observe.ResourceWatch(
                () => pairs.AllPorts().Select(p => new LinuxCp.Management.Observe.ResourceWatch.PortSample(p.Name, EthPort.Stats(p.Id).rx_nombuf)),
                () => new LinuxCp.Management.Observe.ResourceWatch.PoolSample(pool.Name, pool.Size, pool.Available),
                note => Log.Resource(log, note));
            using var resourceTicker = new Timer(_ =>
            {
                try
                {
                    resources.Tick();
                }
                catch (Exception e) when (e is InvalidOperationException or DpdkException)
                {
                    // a port removed while it was read: the next tick reads the new set
                }
            }, null, 1000, 1000);
            if (engine.MainLcoreWorker is uint ml)
            {
                Eal.SetControlAffinity(~Eal.LcoreCpus(ml));
                engine.RunMainWorker();
                Eal.SetControlAffinity(workerCpus);
            }
            else
            {
                lifetime.ApplicationStopping.WaitHandle.WaitOne();
            }

            Log.Stopping(log);
            engine.Stop();
            engine.Join();
            host.StopAsync().GetAwaiter().GetResult();
            if (rest is not null)
            {
                rest.StopAsync().GetAwaiter().GetResult();
                ((IDisposable)rest).Dispose();
                if (restSocket is not null)
                    File.Delete(restSocket);
                File.Delete(opt.ApiSocket + ".grpc");
            }
            return exitCode;
        }

        private static string DpdkVersion() => Eal.Version;

        private static int s_stopAsked;
        private static Action? s_stop;

        private static void StopSignal(PosixSignalContext c)
        {
            Action? stop = Volatile.Read(ref s_stop);
            if (Interlocked.Exchange(ref s_stopAsked, 1) != 0 && stop is null)
                return; // asked twice while starting: the runtime's default, terminate now
            c.Cancel = true; // lcpd stops its own way (workers, ports, mirrors removed, exit 0)
            stop?.Invoke();
        }

        /// <summary>The declarative config layer: its persisted state is read and Linux made to
        /// match it (only what differs is applied), then the --config file as the source 'init'.</summary>
        private static ConfigEngine StartConfig(LaunchOptions opt, ILoggerFactory logs, PairManager pairs)
        {
            var resolver = new Microservices();
            var engine = new ConfigEngine(new NetlinkLinux(resolver.Resolve), new PairControl(pairs),
                new EngineOptions { StateDirectory = opt.ConfigStateDir, Repair = opt.ConfigRepair }, logs.CreateLogger("config"))
            {
                Watchers = new DriftWatchers(),
            };
            try
            {
                int n = engine.Load();
                TxnResult r = engine.Start();
                if (n != 0)
                    Log.ConfigRestored(logs.CreateLogger("config"), n, opt.ConfigStateDir ?? "", r.Ops.Count(o => o.Result == "ok"));
                if (opt.ConfigFile is string file)
                {
                    string text;
                    try
                    {
                        text = File.ReadAllText(file);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        throw new IOException($"--config {file}: {e.Message}", e);
                    }
                    ConfigDocument doc;
                    IReadOnlyDictionary<object, string> paths;
                    try
                    {
                        (doc, paths) = DocumentReader.Parse(text);
                    }
                    catch (ConfigException e)
                    {
                        throw new ConfigException($"--config {file}: {e.Message}");
                    }
                    r = engine.Update("init", doc, new TxnOptions { Replace = true, Paths = paths });
                    if (r.Outcome is "refused" or "reverted")
                        throw new ConfigException($"--config {file}: {r.Error}");
                }
                return engine;
            }
            catch (ConfigException e)
            {
                engine.Dispose();
                throw new IOException(e.Message, e);
            }
            catch
            {
                engine.Dispose();
                throw;
            }
        }
    }

    internal static partial class Log
    {
        [LoggerMessage(3000, LogLevel.Information, "lcpd started: {Workers} worker(s) on lcore(s) {Lcores}, {Pairs} pair(s) ({Seconds:F2} s; {Methods} methods compiled, {JitSeconds:F2} s of it)")]
        public static partial void Started(ILogger log, int workers, string lcores, int pairs, double seconds, long methods, double jitSeconds);

        [LoggerMessage(3001, LogLevel.Information, "stopping")]
        public static partial void Stopping(ILogger log);

        [LoggerMessage(3002, LogLevel.Critical, "worker {Worker} failed; stopping")]
        public static partial void WorkerFailed(ILogger log, int worker, Exception e);

        [LoggerMessage(3004, LogLevel.Information, "config: {Items} item(s) restored from {Dir}; {Applied} operation(s) needed to make Linux match")]
        public static partial void ConfigRestored(ILogger log, int items, string dir, int applied);

        [LoggerMessage(3003, LogLevel.Warning, "{Note}")]
        public static partial void FibSized(ILogger log, string note);

        [LoggerMessage(3006, LogLevel.Information, "classifier: {Count} rule(s) from {File}")]
        public static partial void ClassifierLoaded(ILogger log, int count, string file);

        [LoggerMessage(3005, LogLevel.Warning, "{Note}")]
        public static partial void Resource(ILogger log, string note);
    }
}
