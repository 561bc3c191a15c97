# tsk stack "lua": Lua 5.4 with headers and LuaRocks, plus what upstream tsk's (Neovim plugin) lua
# stack has, from Debian: LuaJIT, luacheck, busted, ldoc, LuaFileSystem, Penlight, inspect and Neovim.
# Debian's luarocks depends on lua5.1|5.2|5.3 (not 5.4), so lua5.1 comes along;
# make `lua`/`luac` and LuaRocks' default Lua version point at 5.4.
# apt's lists cache is `shared`: the locked apt cache mount beside it already keeps one
# build at a time in both, and a locked one there would hang Podman's next build
# (buildah keeps its lock file inside the cache dir, and `apt-get update` deletes it).
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=shared \
    apt-get update \
    && apt-get install -y --no-install-recommends lua5.4 liblua5.4-dev luarocks unzip \
        luajit libluajit-5.1-dev pkg-config lua-check lua-busted lua-ldoc lua-filesystem lua-penlight \
        lua-inspect neovim \
    && update-alternatives --set lua-interpreter /usr/bin/lua5.4 \
    && update-alternatives --set lua-compiler /usr/bin/luac5.4 \
    && luarocks config --scope system lua_version 5.4

RUN lua -v && luac -v && luarocks --version && luarocks config lua_version && luajit -v \
    && luacheck --version && busted --version && nvim --version | head -n1

LABEL dev.tsk.stack="lua"
