{
  "targets": [
    {
      "target_name": "mmap_pool",
      "sources": [
        "native/platform/posix.cc",
        "native/platform/windows.cc",
        "native/alloc/size_classes.cc",
        "native/alloc/arena.cc",
        "native/alloc/arena_maintenance.cc",
        "native/addon/js_segments.cc",
        "native/addon/pool_wrap.cc",
        "native/addon/shared_pool.cc",
        "native/addon/shared_pool_wrap.cc",
        "native/addon/module.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-Wall", "-Wextra", "-O2"],
      "cflags_cc!": ["-fno-rtti"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_ENABLE_CPP_EXCEPTIONS": "NO",
        "MACOSX_DEPLOYMENT_TARGET": "10.15",
        "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 0, "AdditionalOptions": ["/std:c++17"] }
      }
    }
  ]
}
