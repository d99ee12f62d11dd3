#ifndef FCVM_ROOTFS_TESTING_ENTRIES_H_
#define FCVM_ROOTFS_TESTING_ENTRIES_H_

#include <string>

#include "rootfs/archive/deb_archive.h"

namespace fcvm::rootfs::testing {

// A FileEntry for image writer tests.
inline FileEntry MakeEntry(FileEntry::Type type, const std::string& path,
                           mode_t mode, uint32_t uid = 0, uint32_t gid = 0) {
  FileEntry e;
  e.type = type;
  e.path = path;
  e.mode = mode;
  e.uid = uid;
  e.gid = gid;
  return e;
}

}  // namespace fcvm::rootfs::testing

#endif  // FCVM_ROOTFS_TESTING_ENTRIES_H_
