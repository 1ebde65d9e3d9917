-- wrk script of the system benchmarks (run.py), the same for Cascade and for
-- its nginx baseline so both see identical requests:
--   CASCADE_TOKEN  sent as "Authorization: Bearer <token>" (nginx ignores it)
--   WRK_IDS_FILE   optional: one release id a line; each request then asks
--                  for WRK_PATH_PREFIX .. <a random id> instead of the URL's path
--   WRK_PATH_PREFIX default /api/v1/releases/
local token = os.getenv("CASCADE_TOKEN")
if token and #token > 0 then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local ids = {}
local ids_file = os.getenv("WRK_IDS_FILE")
if ids_file and #ids_file > 0 then
  for line in io.lines(ids_file) do
    if #line > 0 then ids[#ids + 1] = line end
  end
end
local prefix = os.getenv("WRK_PATH_PREFIX") or "/api/v1/releases/"

local next_seed = 1
function setup(thread)
  thread:set("seed", next_seed)
  next_seed = next_seed + 1
end

function init(args)
  math.randomseed(seed or 1)
end

if #ids > 0 then
  request = function()
    return wrk.format(nil, prefix .. ids[math.random(#ids)])
  end
end
