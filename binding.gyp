{
  "targets": [
    {
      "target_name": "dpo_native",
      "sources": ["<!@(node -p \"require('fs').readdirSync('native').filter(f => f.endsWith('.cc')).sort().map(f => 'native/' + f).join(' ')\")"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags": ["-O3", "-march=native", "-mtune=native", "-fno-math-errno"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-mtune=native", "-fno-math-errno"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
