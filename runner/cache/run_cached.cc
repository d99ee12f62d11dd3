#include "runner/cache/run_cached.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runner/cache/key.h"
#include "runner/cache/startup_cache.h"
#include "runner/snapshot/clone.h"
#include "runner/snapshot/machine.h"
#include "runner/state/lease.h"
#include "runner/vm/remove.h"
#include "runner/vm/run.h"

namespace fcvm::runner {
namespace {

void Say(const std::string& name, const std::string& what) {
  std::fprintf(stderr, "fcvm: %s: %s\n", name.c_str(), what.c_str());
}

// The run's random parts, as PlanLaunch put them in its state.
LaunchSeeds SeedsOf(const Launch& launch) {
  const VmState& state = launch.state;
  const agent::Plan& plan = state.spec().plan();
  LaunchSeeds seeds;
  seeds.id = state.id();
  seeds.machine_id = plan.machine_id();
  seeds.entropy = plan.entropy();
  seeds.now_unix_ms = state.created_unix_ms();
  return seeds;
}

// "3 min", "2 h": how old an entry is.
std::string Age(int64_t created_unix_ms) {
  const absl::Duration age =
      absl::Now() - absl::FromUnixMillis(created_unix_ms);
  if (age < absl::Seconds(1)) return "<1s";
  return absl::FormatDuration(absl::Trunc(age, absl::Seconds(1)));
}

// Whether a restore that ended before its container was ready failed
// because of the entry (the VMM refused its state, or the guest it held
// did not come back once restored), not because of this run (a host port
// taken, too little memory, a stop request): only then does it go.
bool EntryFailed(const StateStore& store, const std::string& name,
                 const std::string& error) {
  if (absl::StrContains(error, "loading the device state") ||
      absl::StrContains(error, "/snapshot/load")) {
    return true;
  }
  absl::StatusOr<VmState> state = store.Read(name);
  if (!state.ok()) return false;
  bool restored = false, stopping = false;
  for (const PhaseTime& phase : state->phases()) {
    if (phase.phase() == "restored") restored = true;
  }
  stopping =
      absl::StrContains(error, "signal") || absl::StrContains(error, "stop");
  return restored && !stopping;
}

}  // namespace

int RunCached(StateStore& store, Launch launch, const CacheOptions& options) {
  const std::string name = launch.state.name();
  if (options.no_cache) {
    Say(name, "cold boot (--no-cache: no startup snapshot used or stored)");
    return RunVm(store, std::move(launch), options.holder_argv);
  }
  StartupCache cache(store.root());
  absl::StatusOr<std::string> version = VmmVersion(launch.state.vmm_binary());
  absl::StatusOr<CacheKey> key =
      version.ok() ? ComputeCacheKey(launch.state, *version,
                                     [&cache](const std::string& role,
                                              const std::string& path) {
                                       return cache.Digest(role, path);
                                     })
                   : absl::StatusOr<CacheKey>(version.status());
  if (!key.ok()) {
    Say(name, absl::StrCat("cold boot, not cached: ", key.status().message()));
    return RunVm(store, std::move(launch), options.holder_argv);
  }
  const std::string& k = key->key();
  bool fill = true;
  bool dropped = false;  // Said so already, in its one line.
  absl::StatusOr<SnapshotManifest> entry = cache.Lookup(k);
  if (!absl::IsNotFound(entry.status())) {
    const std::string dir = cache.snapshots().TagDir(k);
    absl::Status usable = entry.status();
    if (usable.ok()) usable = CheckRestorable(*entry, ObserveHost(*entry, dir));
    absl::StatusOr<Launch> clone =
        usable.ok() ? PlanClone(*entry, dir, name, MemoryBackend::kFile,
                                launch.detach, store.root(), SeedsOf(launch),
                                {launch.state.ports().begin(),
                                 launch.state.ports().end()})
                    : absl::StatusOr<Launch>(usable);
    auto drop = [&](const std::string& what, absl::string_view why) {
      const absl::Status removed = cache.Remove(store, k, /*force=*/true);
      Say(name, absl::StrCat("cache entry ", k, " ", what, " (", why,
                             removed.ok() ? "" : "; not removed: ",
                             removed.ok() ? "" : removed.message(),
                             "): cold boot, storing a new one once ready"));
      dropped = true;
    };
    if (!usable.ok()) {
      // Never restorable again (a VMM upgrade, a changed input, a damaged
      // file): it goes, and this run stores a new one.
      drop("dropped", usable.message());
    } else if (!clone.ok()) {
      // The entry is fine; this run cannot be its clone (its name's plan
      // too long for QEMU's fw_cfg block): cold, nothing stored.
      Say(name, absl::StrCat("cache entry ", k, " does not fit this run (",
                             clone.status().message(), "): cold boot"));
      fill = false;
    } else {
      RestoredFrom& from = *clone->state.mutable_restored_from();
      from.clear_snapshot();
      from.set_cache_key(k);
      clone->state.mutable_cache()->set_key(k);
      clone->state.mutable_cache()->set_hit(true);
      Say(name, absl::StrCat("cached ", k, " (snapshot of ", entry->source_vm(),
                             ", ", Age(entry->created_unix_ms()), " old)"));
      cache.Touch(k);
      bool ready = false;
      std::string error;
      RunHooks hooks;
      hooks.ready = &ready;
      hooks.error = &error;
      const int code =
          RunVm(store, std::move(*clone), options.holder_argv, hooks);
      if (ready) return code;
      if (!EntryFailed(store, name, error)) {
        // This run's own failure (a host port taken, a stop request): the
        // entry stays, and so does the VM's record (logs, inspect), as
        // for any run that failed.
        Say(name, absl::StrCat("ended before it was ready: ", error,
                               " (fcvm logs --console ", name, ")"));
        return code;
      }
      // A damaged entry: it goes, with the clone that never ran a
      // container.
      // Its detached supervisor may still be tearing down: wait for its
      // lease to be free, then remove what it left.
      if (absl::StatusOr<VmState> failed = store.Read(name); failed.ok()) {
        const absl::Time deadline = absl::Now() + absl::Seconds(10);
        while (Lease::Held(failed->dir()) && absl::Now() < deadline) {
          absl::SleepFor(absl::Milliseconds(20));
        }
        (void)RemoveVm(store, name, /*force=*/false);
      }
      drop("did not restore", error);
    }
  }
  RunHooks hooks;
  if (fill) {
    launch.state.mutable_cache()->set_key(k);
    hooks.cache_fill_argv = options.fcvm_argv;
    if (!dropped) {
      Say(name,
          absl::StrCat("cold boot (cache miss ", k,
                       "; a startup snapshot is stored once it is ready)"));
    }
  }
  return RunVm(store, std::move(launch), options.holder_argv, hooks);
}

}  // namespace fcvm::runner
